// Files named by a user (configs, specs, traces, result files): refused up front when they are
// not regular files, so a FIFO or device cannot block a run forever and a directory is not read
// as an empty config; text inputs are read whole under a size limit.
#pragma once

#include <cstdint>
#include <string>

namespace tiersim {

// Largest text input (config, fragment, spec, arrival or routing trace) read whole.
inline constexpr uint64_t kMaxTextInputBytes = uint64_t{64} << 20;

// "" when `path` names a readable regular file of at most `max_bytes`; otherwise why not
// ("no such file", "is a directory", "is not a regular file (a FIFO, device or socket)",
// "is N bytes, more than the limit of M", or the system's reason it cannot be opened).
std::string input_file_problem(const std::string& path, uint64_t max_bytes = UINT64_MAX);

// Path queries that never throw (std::filesystem's throw on a name too long, a symlink loop or
// a missing permission): false on any error, as if the path did not exist.
bool path_exists(const std::string& path);
bool path_is_directory(const std::string& path);

// Reads `path` whole into `*text`; returns "" or the problem as input_file_problem words it.
std::string read_input_file(const std::string& path, std::string* text,
                            uint64_t max_bytes = kMaxTextInputBytes);

}  // namespace tiersim
