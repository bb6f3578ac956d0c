#include "models/run/result_file.h"

// The HDF5 1.10 C++ classes rely on implicitly declared copy assignment, which GCC flags.
#pragma GCC diagnostic ignored "-Wdeprecated-copy"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "models/core/input_file.h"

namespace tiersim {

namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "host";
  std::string h(buf);
  for (char& c : h)
    if (c == '/' || c == '-') c = '_';
  return h;
}

// ".<name>.partial-<host>-<pid>" beside `final_path`.
std::string temp_sibling(const std::string& final_path) {
  namespace fs = std::filesystem;
  const fs::path target(final_path);
  return (target.parent_path() / ("." + target.filename().string() + ".partial-" + host_name() +
                                  "-" + std::to_string(getpid())))
      .string();
}

// Whether process `pid` of this host still runs. A zombie (killed, not yet reaped: its parent
// was killed too, and a container's init may never reap it) does not.
bool process_runs(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (stat) {
    std::string line;
    std::getline(stat, line);
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) return true;
    const char state = line[paren + 2];
    return state != 'Z' && state != 'X';
  }
  return !(kill(pid, 0) != 0 && errno == ESRCH);
}

// Removes temporary siblings of `final_path` left by processes of this host that no longer run
// (a run killed mid-write). Files of live processes and of other hosts (a shared file system)
// are left alone.
void remove_stale_partials(const std::string& final_path) {
  namespace fs = std::filesystem;
  const fs::path target(final_path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = "." + target.filename().string() + ".partial-" + host_name() + "-";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == getpid() || !process_runs(pid)) {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
}

// Makes a rename into `dir` durable.
void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// --- the seal ------------------------------------------------------------------------------
// A result file is an HDF5 file behind a 512-byte user block (HDF5 and h5py skip it) that holds
// a text seal: a magic line, the file's size and the CRC-32 of every byte after the block. The
// writer seals the file last, so a file cut short, overwritten in part or not written by tiersim
// is refused before libhdf5 reads it (libhdf5 is not robust to corrupt input).

constexpr size_t kSealBytes = 512;
constexpr char kSealMagic[] = "tiersim result file (HDF5 after a 512-byte user block)\n";

std::string errno_text() {
  return std::strerror(errno);
}

// CRC-32 of the bytes of `fd` from kSealBytes to its end; false on a read error.
bool payload_crc(int fd, uint32_t* crc) {
  boost::crc_32_type sum;
  std::vector<char> buf(1 << 20);
  off_t at = static_cast<off_t>(kSealBytes);
  while (true) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    sum.process_bytes(buf.data(), static_cast<size_t>(n));
    at += n;
  }
  *crc = sum.checksum();
  return true;
}

// Writes the seal into the user block of the closed HDF5 file at `path` and syncs it to disk.
void seal_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0) throw std::runtime_error("cannot seal " + path + ": " + errno_text());
  struct stat st {};
  uint32_t crc = 0;
  bool ok = ::fstat(fd, &st) == 0 && payload_crc(fd, &crc);
  if (ok) {
    char seal[kSealBytes] = {};
    std::snprintf(seal, sizeof(seal), "%sseal 1\nbytes %lld\ncrc32 %08x\n", kSealMagic,
                  static_cast<long long>(st.st_size), crc);
    ok = ::pwrite(fd, seal, sizeof(seal), 0) == static_cast<ssize_t>(sizeof(seal)) &&
         ::fsync(fd) == 0;
  }
  const std::string why = ok ? "" : errno_text();
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot seal " + path + ": " + why);
}

std::pair<std::string, std::string> split_path(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) {
    return {"/", path.substr(slash == std::string::npos ? 0 : 1)};
  }
  return {path.substr(0, slash), path.substr(slash + 1)};
}

H5::StrType vlen_string_type() {
  H5::StrType t(H5::PredType::C_S1, H5T_VARIABLE);
  t.setCset(H5T_CSET_UTF8);
  return t;
}

// The transfer properties of a write that converts `elements` elements between `memory` and
// `file` types (variable-length strings, tables): conversion buffers sized to the write. HDF5's
// default allocates and zeroes a 1 MiB type-conversion buffer and a 1 MiB background buffer for
// every such write, which was most of the time a small result file took to write. The bytes
// written are the same: the size only sets how many elements a conversion pass takes, and it
// must hold one element as stored, which a variable-length string makes up to twice its size in
// memory (16 bytes against 8): four times the larger in-memory size always does. Writes that
// would need more than the default keep it.
H5::DSetMemXferPropList xfer_for(hsize_t elements, const H5::DataType& memory,
                                 const H5::DataType& file) {
  H5::DSetMemXferPropList p;
  const size_t need = size_t(elements) * 4 * std::max(memory.getSize(), file.getSize());
  if (need < (size_t{1} << 20)) p.setBuffer(std::max<size_t>(need, 4096), nullptr, nullptr);
  return p;
}

const H5::PredType& native_type(Table::Type type) {
  switch (type) {
    case Table::Type::kU64:
      return H5::PredType::NATIVE_UINT64;
    case Table::Type::kI64:
      return H5::PredType::NATIVE_INT64;
    case Table::Type::kF64:
      return H5::PredType::NATIVE_DOUBLE;
    case Table::Type::kStr:
      break;
  }
  throw std::logic_error("native_type: string column");
}

// A group creation property list that tracks and indexes link creation order.
hid_t ordered_gcpl() {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  return gcpl;
}

}  // namespace

ResultWriter::ResultWriter(std::string final_path)
    : final_path_(std::move(final_path)), temp_path_(temp_sibling(final_path_)) {
  H5::Exception::dontPrint();
  remove_stale_partials(final_path_);
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  H5Pset_userblock(fcpl, kSealBytes);
  H5::FileCreatPropList create_props(fcpl);
  H5Pclose(fcpl);
  file_.emplace(temp_path_, H5F_ACC_TRUNC, create_props);
}

ResultWriter::~ResultWriter() {
  if (!committed_) {
    try {
      if (file_) file_->close();
    } catch (...) {
    }
    std::remove(temp_path_.c_str());
  }
}

H5::Group ResultWriter::group_for(const std::string& parent) {
  H5::Group g = file_->openGroup("/");
  if (parent == "/" || parent.empty()) return g;
  size_t pos = 1;
  while (pos <= parent.size()) {
    size_t next = parent.find('/', pos);
    if (next == std::string::npos) next = parent.size();
    const std::string name = parent.substr(pos, next - pos);
    if (!name.empty()) {
      if (g.nameExists(name)) {
        g = g.openGroup(name);
      } else {
        hid_t gcpl = ordered_gcpl();
        hid_t id = H5Gcreate2(g.getId(), name.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT);
        H5Pclose(gcpl);
        if (id < 0) throw std::runtime_error("HDF5: cannot create group " + parent);
        g = H5::Group(id);
        H5Idec_ref(id);  // H5::Group took its own reference
      }
    }
    pos = next + 1;
  }
  return g;
}

void ResultWriter::write_string(const std::string& path, const std::string& value) {
  auto [parent, name] = split_path(path);
  H5::Group g = group_for(parent);
  H5::StrType type = vlen_string_type();
  H5::DataSet ds = g.createDataSet(name, type, H5::DataSpace(H5S_SCALAR));
  const char* p = value.c_str();
  ds.write(&p, type, H5::DataSpace::ALL, H5::DataSpace::ALL, xfer_for(1, type, type));
}

void ResultWriter::write_strings(const std::string& path, const std::vector<std::string>& values) {
  auto [parent, name] = split_path(path);
  H5::Group g = group_for(parent);
  H5::StrType type = vlen_string_type();
  hsize_t dims[1] = {values.size()};
  H5::DataSet ds = g.createDataSet(name, type, H5::DataSpace(1, dims));
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values)
    ptrs.push_back(v.c_str());
  if (!ptrs.empty()) {
    ds.write(ptrs.data(), type, H5::DataSpace::ALL, H5::DataSpace::ALL,
             xfer_for(ptrs.size(), type, type));
  }
}

void ResultWriter::write_scalar(const std::string& path, double value, const std::string& unit) {
  auto [parent, name] = split_path(path);
  H5::Group g = group_for(parent);
  H5::DataSet ds = g.createDataSet(name, H5::PredType::IEEE_F64LE, H5::DataSpace(H5S_SCALAR));
  ds.write(&value, H5::PredType::NATIVE_DOUBLE);
  set_attribute(path, "unit", unit);
}

void ResultWriter::write_scalar_u64(const std::string& path, uint64_t value,
                                    const std::string& unit) {
  auto [parent, name] = split_path(path);
  H5::Group g = group_for(parent);
  H5::DataSet ds = g.createDataSet(name, H5::PredType::STD_U64LE, H5::DataSpace(H5S_SCALAR));
  ds.write(&value, H5::PredType::NATIVE_UINT64);
  set_attribute(path, "unit", unit);
}

void ResultWriter::write_matrix(const std::string& path, size_t rows, size_t cols,
                                const std::vector<double>& data) {
  if (data.size() != rows * cols) throw std::logic_error("write_matrix: size mismatch " + path);
  auto [parent, name] = split_path(path);
  H5::Group g = group_for(parent);
  hsize_t dims[2] = {rows, cols};
  H5::DataSpace space(cols == 1 ? 1 : 2, dims);
  H5::DataSet ds = g.createDataSet(name, H5::PredType::IEEE_F64LE, space);
  if (!data.empty()) ds.write(data.data(), H5::PredType::NATIVE_DOUBLE);
}

void ResultWriter::write_u64s(const std::string& path, const std::vector<uint64_t>& values) {
  auto [parent, name] = split_path(path);
  H5::Group g = group_for(parent);
  hsize_t dims[1] = {values.size()};
  H5::DataSet ds = g.createDataSet(name, H5::PredType::STD_U64LE, H5::DataSpace(1, dims));
  if (!values.empty()) ds.write(values.data(), H5::PredType::NATIVE_UINT64);
}

void ResultWriter::write_table(const std::string& path, const Table& table) {
  const size_t rows = table.rows();
  for (const auto& c : table.columns) {
    if (c.size() != rows) throw std::logic_error("write_table: ragged column " + c.name);
  }
  // Every member is 8 bytes: 64-bit numbers or a char* for variable-length strings.
  const size_t row_size = 8 * table.columns.size();
  H5::CompType mem_type(row_size), file_type(row_size);
  H5::StrType str_type = vlen_string_type();
  for (size_t i = 0; i < table.columns.size(); ++i) {
    const auto& c = table.columns[i];
    if (c.type == Table::Type::kStr) {
      mem_type.insertMember(c.name, 8 * i, str_type);
      file_type.insertMember(c.name, 8 * i, str_type);
    } else {
      mem_type.insertMember(c.name, 8 * i, native_type(c.type));
      const H5::PredType& ft = c.type == Table::Type::kU64   ? H5::PredType::STD_U64LE
                               : c.type == Table::Type::kI64 ? H5::PredType::STD_I64LE
                                                             : H5::PredType::IEEE_F64LE;
      file_type.insertMember(c.name, 8 * i, ft);
    }
  }
  std::vector<unsigned char> buf(rows * row_size);
  for (size_t r = 0; r < rows; ++r) {
    unsigned char* row = buf.data() + r * row_size;
    for (size_t i = 0; i < table.columns.size(); ++i) {
      const auto& c = table.columns[i];
      unsigned char* cell = row + 8 * i;
      switch (c.type) {
        case Table::Type::kU64:
          std::memcpy(cell, &c.u64[r], 8);
          break;
        case Table::Type::kI64:
          std::memcpy(cell, &c.i64[r], 8);
          break;
        case Table::Type::kF64:
          std::memcpy(cell, &c.f64[r], 8);
          break;
        case Table::Type::kStr: {
          const char* p = c.str[r].c_str();
          std::memcpy(cell, &p, sizeof(p));
          break;
        }
      }
    }
  }
  auto [parent, name] = split_path(path);
  H5::Group g = group_for(parent);
  hsize_t dims[1] = {rows};
  H5::DataSet ds = g.createDataSet(name, file_type, H5::DataSpace(1, dims));
  if (rows > 0) {
    ds.write(buf.data(), mem_type, H5::DataSpace::ALL, H5::DataSpace::ALL,
             xfer_for(rows, mem_type, file_type));
  }
  for (const auto& c : table.columns) {
    if (!c.unit.empty()) set_attribute(path, "unit_" + c.name, c.unit);
  }
}

void ResultWriter::set_attribute(const std::string& path, const std::string& name,
                                 const std::string& value) {
  H5::H5Object* obj = nullptr;
  H5::Group group;
  H5::DataSet ds;
  if (file_->childObjType(path) == H5O_TYPE_GROUP) {
    group = file_->openGroup(path);
    obj = &group;
  } else {
    ds = file_->openDataSet(path);
    obj = &ds;
  }
  H5::StrType type = vlen_string_type();
  H5::Attribute attr = obj->createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
  const char* p = value.c_str();
  attr.write(type, &p);
}

void ResultWriter::set_attribute_strings(const std::string& path, const std::string& name,
                                         const std::vector<std::string>& values) {
  H5::Group group = group_for(path);
  H5::StrType type = vlen_string_type();
  hsize_t dims[1] = {values.size()};
  H5::Attribute attr = group.createAttribute(name, type, H5::DataSpace(1, dims));
  std::vector<const char*> ptrs;
  for (const auto& v : values)
    ptrs.push_back(v.c_str());
  if (!ptrs.empty()) attr.write(type, ptrs.data());
}

void ResultWriter::commit() {
  file_->flush(H5F_SCOPE_GLOBAL);
  file_->close();
  file_.reset();
  try {
    seal_file(temp_path_);
  } catch (...) {
    std::remove(temp_path_.c_str());
    throw;
  }
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    std::remove(temp_path_.c_str());
    throw std::runtime_error("cannot rename " + temp_path_ + " to " + final_path_ + ": " +
                             std::strerror(errno));
  }
  sync_directory(std::filesystem::path(final_path_).parent_path().string());
  committed_ = true;
}

std::string prepare_output_path(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path out(path);
  if (out.filename().empty()) return path + ": must name a file";
  std::error_code ec;
  if (out.has_parent_path()) fs::create_directories(out.parent_path(), ec);
  if (ec) return path + ": cannot create directory: " + ec.message();
  if (path_is_directory(path)) return path + " is a directory";
  const std::string dir = out.has_parent_path() ? out.parent_path().string() : ".";
  if (access(dir.c_str(), W_OK) != 0) return path + ": directory is not writable";
  // The file is written under a longer temporary name first: both must fit the file system.
  const long name_max = pathconf(dir.c_str(), _PC_NAME_MAX);
  const size_t temp_name = fs::path(temp_sibling(path)).filename().string().size();
  if (name_max > 0 && temp_name > static_cast<size_t>(name_max)) {
    return path + ": file name too long (" + std::to_string(out.filename().string().size()) +
           " characters; with its temporary suffix it must stay within the file system's " +
           std::to_string(name_max) + ")";
  }
  return "";
}

std::string write_text_atomically(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  remove_stale_partials(path);
  const fs::path tmp = temp_sibling(path);
  {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return "cannot write " + tmp.string() + ": " + errno_text();
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    const bool ok = done == text.size() && ::fsync(fd) == 0;
    const std::string why = ok ? "" : errno_text();
    ::close(fd);
    if (!ok) {
      std::error_code rm;
      fs::remove(tmp, rm);
      return "cannot write " + tmp.string() + ": " + why;
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code rm;
    fs::remove(tmp, rm);
    return "cannot write " + path + ": " + ec.message();
  }
  sync_directory(target.parent_path().string());
  return "";
}

// --- reader --------------------------------------------------------------------------------

namespace {
H5::H5File open_read_only(const std::string& path) {
  H5::Exception::dontPrint();
  if (const std::string problem = result_file_problem(path); !problem.empty()) {
    throw ResultFileError(path + ": " + problem);
  }
  try {
    return H5::H5File(path, H5F_ACC_RDONLY);
  } catch (const H5::Exception& e) {
    throw ResultFileError(path + ": not a readable HDF5 file (" + e.getDetailMsg() + ")");
  }
}
}  // namespace

std::string result_file_problem(const std::string& path) {
  if (std::string problem = input_file_problem(path); !problem.empty()) return problem;
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return "cannot be opened: " + errno_text();
  char seal[kSealBytes + 1] = {};
  struct stat st {};
  std::string problem;
  uint32_t crc = 0;
  long long bytes = -1;
  unsigned stored_crc = 0;
  int version = 0;
  const size_t magic = sizeof(kSealMagic) - 1;
  if (::fstat(fd, &st) != 0 || ::pread(fd, seal, kSealBytes, 0) != ssize_t(kSealBytes) ||
      std::memcmp(seal, kSealMagic, magic) != 0) {
    problem = "not a tiersim result file (no tiersim seal at its start)";
  } else if (std::sscanf(seal + magic, "seal %d\nbytes %lld\ncrc32 %8x\n", &version, &bytes,
                         &stored_crc) != 3 ||
             version != 1) {
    problem = "damaged tiersim result file (unreadable seal)";
  } else if (std::any_of(seal + std::strlen(seal), seal + kSealBytes,
                         [](char c) { return c != '\0'; })) {
    problem = "damaged tiersim result file (its seal block has stray bytes)";
  } else if (bytes != static_cast<long long>(st.st_size)) {
    problem = "damaged tiersim result file (" + std::to_string(st.st_size) +
              " bytes where its seal says " + std::to_string(bytes) + ")";
  } else if (!payload_crc(fd, &crc)) {
    problem = "cannot be read: " + errno_text();
  } else if (crc != stored_crc) {
    problem = "damaged tiersim result file (checksum mismatch)";
  }
  ::close(fd);
  return problem;
}

ResultReader::ResultReader(const std::string& path) : file_(open_read_only(path)) {}

bool ResultReader::exists(const std::string& path) const {
  return H5Lexists(file_.getId(), path.c_str(), H5P_DEFAULT) > 0;
}

std::string ResultReader::read_string(const std::string& path) const {
  H5::DataSet ds = file_.openDataSet(path);
  H5::StrType type = vlen_string_type();
  char* p = nullptr;
  ds.read(&p, type);
  std::string out = p ? p : "";
  std::free(p);
  return out;
}

std::vector<std::string> ResultReader::read_strings(const std::string& path) const {
  H5::DataSet ds = file_.openDataSet(path);
  hsize_t n = 0;
  ds.getSpace().getSimpleExtentDims(&n);
  std::vector<char*> ptrs(n, nullptr);
  H5::StrType type = vlen_string_type();
  if (n > 0) ds.read(ptrs.data(), type);
  std::vector<std::string> out;
  for (char* p : ptrs) {
    out.emplace_back(p ? p : "");
    std::free(p);
  }
  return out;
}

std::vector<double> ResultReader::read_doubles(const std::string& path) const {
  H5::DataSet ds = file_.openDataSet(path);
  const hssize_t n = ds.getSpace().getSimpleExtentNpoints();
  std::vector<double> out(static_cast<size_t>(n));
  if (n > 0) ds.read(out.data(), H5::PredType::NATIVE_DOUBLE);
  return out;
}

std::string ResultReader::attribute(const std::string& path, const std::string& name) const {
  H5::Attribute attr = file_.childObjType(path) == H5O_TYPE_GROUP
                           ? file_.openGroup(path).openAttribute(name)
                           : file_.openDataSet(path).openAttribute(name);
  H5::StrType type = vlen_string_type();
  char* p = nullptr;
  attr.read(type, &p);
  std::string out = p ? p : "";
  std::free(p);
  return out;
}

std::vector<SummaryItem> ResultReader::summary(const std::string& group) const {
  std::vector<SummaryItem> items;
  H5::Group g = file_.openGroup(group);
  const hsize_t n = g.getNumObjs();
  for (hsize_t i = 0; i < n; ++i) {
    // Creation order: the order the writer produced the metrics.
    char name[256];
    ssize_t len = H5Lget_name_by_idx(g.getId(), ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, name,
                                     sizeof(name), H5P_DEFAULT);
    if (len < 0) throw std::runtime_error("HDF5: cannot list " + group);
    const std::string path = group + "/" + name;
    double v = 0;
    file_.openDataSet(path).read(&v, H5::PredType::NATIVE_DOUBLE);
    items.push_back({name, v, attribute(path, "unit")});
  }
  return items;
}

Table ResultReader::read_table(const std::string& path) const {
  H5::DataSet ds = file_.openDataSet(path);
  H5::CompType ftype = ds.getCompType();
  hsize_t rows = 0;
  ds.getSpace().getSimpleExtentDims(&rows);
  Table t;
  for (int m = 0; m < ftype.getNmembers(); ++m) {
    const std::string name = ftype.getMemberName(m);
    const H5T_class_t cls = ftype.getMemberClass(m);
    Table::Type type;
    if (cls == H5T_STRING) {
      type = Table::Type::kStr;
    } else if (cls == H5T_FLOAT) {
      type = Table::Type::kF64;
    } else {
      type = ftype.getMemberIntType(m).getSign() == H5T_SGN_NONE ? Table::Type::kU64
                                                                 : Table::Type::kI64;
    }
    size_t idx = t.add_column(name, type);
    auto& col = t.columns[idx];
    // Read one member at a time through a single-member memory type.
    if (type == Table::Type::kStr) {
      H5::StrType st = vlen_string_type();
      H5::CompType mt(sizeof(char*));
      mt.insertMember(name, 0, st);
      std::vector<char*> ptrs(rows, nullptr);
      if (rows) ds.read(ptrs.data(), mt);
      for (char* p : ptrs) {
        col.str.emplace_back(p ? p : "");
        std::free(p);
      }
    } else {
      H5::CompType mt(static_cast<size_t>(8));
      mt.insertMember(name, 0, native_type(type));
      if (type == Table::Type::kU64) {
        col.u64.resize(rows);
        if (rows) ds.read(col.u64.data(), mt);
      } else if (type == Table::Type::kI64) {
        col.i64.resize(rows);
        if (rows) ds.read(col.i64.data(), mt);
      } else {
        col.f64.resize(rows);
        if (rows) ds.read(col.f64.data(), mt);
      }
    }
  }
  return t;
}

}  // namespace tiersim
