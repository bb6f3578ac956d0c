// The one wrapper over the HDF5 C++ API: result files written atomically, and read back.
//
// ResultWriter writes to a temporary sibling of the final path (".<name>.partial-<host>-<pid>"),
// seals it (a 512-byte user block in front of the HDF5 content with the file's size and CRC-32),
// syncs it and renames it onto the final path in commit(). A writer destroyed without commit()
// removes its temporary file; a process killed mid-write leaves only a ".partial-" file, never a
// file at the final path, and the next writer of that path on the same host removes it. Groups
// track link creation order so readers list items in the order written.
#pragma once

#include <H5Cpp.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/core/summary.h"

namespace tiersim {

class ResultWriter : public ResultSink {
 public:
  explicit ResultWriter(std::string final_path);
  ~ResultWriter() override;
  ResultWriter(const ResultWriter&) = delete;
  ResultWriter& operator=(const ResultWriter&) = delete;

  const std::string& temp_path() const { return temp_path_; }

  // ResultSink: paths are absolute HDF5 paths; missing parent groups are created.
  void write_string(const std::string& path, const std::string& value) override;
  void write_strings(const std::string& path, const std::vector<std::string>& values) override;
  void write_scalar(const std::string& path, double value, const std::string& unit) override;
  void write_scalar_u64(const std::string& path, uint64_t value, const std::string& unit) override;
  // Row-major matrix of rows x cols doubles (cols == 1 writes a 1-D dataset).
  void write_matrix(const std::string& path, size_t rows, size_t cols,
                    const std::vector<double>& data) override;
  void write_u64s(const std::string& path, const std::vector<uint64_t>& values) override;
  void write_table(const std::string& path, const Table& table) override;
  void set_attribute(const std::string& path, const std::string& name,
                     const std::string& value) override;
  void set_attribute_strings(const std::string& path, const std::string& name,
                             const std::vector<std::string>& values) override;

  // Flushes, closes and atomically renames the file onto its final path.
  void commit();

 private:
  H5::Group group_for(const std::string& parent);
  std::string final_path_, temp_path_;
  std::optional<H5::H5File> file_;
  bool committed_ = false;
};

// Prepares `path` as an output file: creates missing parent directories and checks that the
// directory is writable and `path` is not a directory. Returns "" or what is wrong (bad input).
std::string prepare_output_path(const std::string& path);

// Writes a text file under `.<name>.partial-<pid>` beside it, then renames it onto `path`, so
// nothing at `path` is ever half written. Returns "" or what went wrong.
std::string write_text_atomically(const std::string& path, const std::string& text);

// A result file that cannot be read: missing, not sealed by tiersim, cut short or damaged.
class ResultFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "" when `path` is a complete tiersim result file: a regular file whose seal (the user block
// in front of its HDF5 content) matches its size and CRC-32; otherwise what is wrong with it.
std::string result_file_problem(const std::string& path);

// Read access for `tiersim report`, tests and tools. The constructor checks the seal
// (ResultFileError when it does not match); HDF5 errors of the accessors are H5::Exception.
class ResultReader {
 public:
  explicit ResultReader(const std::string& path);
  bool exists(const std::string& path) const;
  // A summary group's items in the order written (every rank simulated: "/nodes/<r>/summary").
  std::vector<SummaryItem> summary(const std::string& group = "/summary") const;
  std::string read_string(const std::string& path) const;
  std::vector<std::string> read_strings(const std::string& path) const;
  std::vector<double> read_doubles(const std::string& path) const;
  std::string attribute(const std::string& path, const std::string& name) const;
  Table read_table(const std::string& path) const;

 private:
  H5::H5File file_;
};

}  // namespace tiersim
