// Entry point. We provide main() (instead of libsystemc's) only to silence the SystemC banner,
// which libsystemc prints before sc_main; stdout and stderr belong to tiersim's own output.
#include <cstdlib>
#include <systemc>

#include "models/run/cli.h"

int sc_main(int argc, char** argv) {
  sc_core::sc_report_handler::set_actions(sc_core::SC_WARNING, sc_core::SC_DO_NOTHING);
  sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  return tiersim::run_cli(argc, argv);
}

int main(int argc, char** argv) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
