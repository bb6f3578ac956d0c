// The tiersim command line: run, config, report, list. Returns the process exit code:
// 0 ok, 2 bad input (config, arguments, files), 1 internal error.
#pragma once

namespace tiersim {
int run_cli(int argc, char** argv);
}
