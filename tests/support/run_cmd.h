// Runs a command line through /bin/sh and captures its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tiersim::test {

struct CmdResult {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline CmdResult run_cmd(const std::string& cmd) {
  namespace fs = std::filesystem;
  static int counter = 0;
  const std::string base = (fs::temp_directory_path() / ("tiersim_cmd_" + std::to_string(getpid()) +
                                                         "_" + std::to_string(counter++)))
                               .string();
  const std::string full = cmd + " >" + base + ".out 2>" + base + ".err";
  const int status = std::system(full.c_str());
  CmdResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  fs::remove(base + ".out");
  fs::remove(base + ".err");
  return r;
}

}  // namespace tiersim::test
