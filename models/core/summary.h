// What a component or workload contributes to a run's result, without the result file: summary
// items (the headline metrics of /summary), column tables, percentiles, and ResultSink, the
// interface a workload writes its own datasets through. The HDF5 file that implements the sink
// lives in models/run/ (result_file.h); nothing here depends on HDF5.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tiersim {

struct SummaryItem {
  std::string name;
  double value;
  std::string unit;
};

// Linear interpolation between closest ranks; p in [0, 100]; 0 for an empty set.
double percentile(std::vector<double> values, double p);

// A column-oriented table written as one HDF5 compound dataset (pandas: pd.DataFrame(ds[()])).
struct Table {
  enum class Type { kU64, kI64, kF64, kStr };
  struct Column {
    std::string name;
    Type type;
    std::string unit;  // stored as attribute "unit_<name>" on the dataset; may be empty
    std::vector<uint64_t> u64;
    std::vector<int64_t> i64;
    std::vector<double> f64;
    std::vector<std::string> str;
    size_t size() const;
  };
  std::vector<Column> columns;

  // Adds a column and returns its index.
  size_t add_column(std::string name, Type type, std::string unit = "");
  size_t rows() const { return columns.empty() ? 0 : columns[0].size(); }
  const Column* find(const std::string& name) const;
};

// Where results go. Paths are absolute HDF5-style paths ("/workload/requests"); missing parent
// groups are created. The result file is the one implementation.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void write_string(const std::string& path, const std::string& value) = 0;
  virtual void write_strings(const std::string& path, const std::vector<std::string>& values) = 0;
  virtual void write_scalar(const std::string& path, double value, const std::string& unit) = 0;
  virtual void write_scalar_u64(const std::string& path, uint64_t value,
                                const std::string& unit) = 0;
  // Row-major matrix of rows x cols doubles (cols == 1 writes a 1-D dataset).
  virtual void write_matrix(const std::string& path, size_t rows, size_t cols,
                            const std::vector<double>& data) = 0;
  virtual void write_u64s(const std::string& path, const std::vector<uint64_t>& values) = 0;
  virtual void write_table(const std::string& path, const Table& table) = 0;
  virtual void set_attribute(const std::string& path, const std::string& name,
                             const std::string& value) = 0;
  virtual void set_attribute_strings(const std::string& path, const std::string& name,
                                     const std::vector<std::string>& values) = 0;
};

}  // namespace tiersim
