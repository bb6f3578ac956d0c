#include "models/core/input_file.h"

#include <filesystem>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace tiersim {

std::string input_file_problem(const std::string& path, uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? std::string("no such file") : std::string(std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return "is a directory";
  if (!S_ISREG(st.st_mode)) return "is not a regular file (a FIFO, device or socket)";
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return "is " + std::to_string(st.st_size) + " bytes, more than the limit of " +
           std::to_string(max_bytes);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot be opened for reading";
  return "";
}

std::string read_input_file(const std::string& path, std::string* text, uint64_t max_bytes) {
  if (std::string problem = input_file_problem(path, max_bytes); !problem.empty()) return problem;
  std::ifstream in(path, std::ios::binary);
  text->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) return "cannot be read";
  // The file may have grown between the check and the read.
  if (text->size() > max_bytes) {
    return "is more than the limit of " + std::to_string(max_bytes) + " bytes";
  }
  return "";
}

bool path_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec) && !ec;
}

bool path_is_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) && !ec;
}

}  // namespace tiersim
