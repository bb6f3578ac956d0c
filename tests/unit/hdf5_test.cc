#include "models/run/result_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace tiersim {
namespace {

namespace fs = std::filesystem;

std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() / ("tiersim_h5_" + std::to_string(getpid()) + "_" + name))
      .string();
}

TEST(Hdf5, RoundTripSummaryTablesStringsAndMatrices) {
  const std::string path = temp_file("rt.h5");
  {
    ResultWriter w(path);
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::exists(w.temp_path()));
    w.write_scalar("/summary/zeta", 1.5, "ms");
    w.write_scalar("/summary/alpha", -2, "tokens/s");
    w.write_string("/meta/config", "system { name: \"x\" }\n");
    w.write_strings("/meta/overrides", {"a=1", "b.c=two"});
    w.write_matrix("/stats/hbm/util", 2, 3, {1, 2, 3, 4, 5, 6});
    w.set_attribute("/stats/hbm/util", "unit", "fraction");
    Table t;
    t.add_column("step", Table::Type::kU64);
    t.add_column("delta", Table::Type::kI64);
    t.add_column("ms", Table::Type::kF64, "ms");
    t.add_column("kind", Table::Type::kStr);
    t.columns[0].u64 = {0, 1, 2};
    t.columns[1].i64 = {-1, 0, 7};
    t.columns[2].f64 = {0.5, 1.25, 3};
    t.columns[3].str = {"qkv_proj", "", "lm_head"};
    w.write_table("/tokens", t);
    w.commit();
  }
  ASSERT_TRUE(fs::exists(path));
  ResultReader r(path);
  auto s = r.summary();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "zeta");  // creation order, not alphabetical
  EXPECT_DOUBLE_EQ(s[0].value, 1.5);
  EXPECT_EQ(s[0].unit, "ms");
  EXPECT_EQ(s[1].name, "alpha");
  EXPECT_EQ(r.read_string("/meta/config"), "system { name: \"x\" }\n");
  EXPECT_EQ(r.read_strings("/meta/overrides"), (std::vector<std::string>{"a=1", "b.c=two"}));
  EXPECT_EQ(r.read_doubles("/stats/hbm/util"), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r.attribute("/stats/hbm/util", "unit"), "fraction");
  Table t = r.read_table("/tokens");
  ASSERT_EQ(t.rows(), 3u);
  EXPECT_EQ(t.find("step")->u64, (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(t.find("delta")->i64, (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_EQ(t.find("ms")->f64, (std::vector<double>{0.5, 1.25, 3}));
  EXPECT_EQ(t.find("kind")->str, (std::vector<std::string>{"qkv_proj", "", "lm_head"}));
  EXPECT_EQ(r.attribute("/tokens", "unit_ms"), "ms");
  fs::remove(path);
}

TEST(Hdf5, OneRowTablesOfManyColumnsAndStrings) {
  // A sweep's summary table of one point: one row, many numeric columns and a few strings (a
  // string takes twice its in-memory size as stored); and a row of strings only. Each must be
  // written (its conversion buffer holds a stored row) and read back.
  for (const auto& [numbers, strings] : {std::pair<int, int>{100, 30}, {29, 2}, {0, 20}}) {
    const std::string path = temp_file("wide.h5");
    {
      ResultWriter w(path);
      Table t;
      for (int c = 0; c < numbers; ++c) {
        t.add_column("n" + std::to_string(c), Table::Type::kF64);
        t.columns.back().f64 = {double(c) + 0.5};
      }
      for (int c = 0; c < strings; ++c) {
        t.add_column("s" + std::to_string(c), Table::Type::kStr);
        t.columns.back().str = {std::string(size_t(c) * 7, 'x')};
      }
      w.write_table("/summary", t);
      w.write_strings("/meta/one", {std::string(5000, 'y')});
      w.commit();
    }
    ResultReader r(path);
    const Table t = r.read_table("/summary");
    ASSERT_EQ(t.rows(), 1u);
    ASSERT_EQ(t.columns.size(), size_t(numbers + strings));
    if (numbers > 0) {
      EXPECT_EQ(t.find("n" + std::to_string(numbers - 1))->f64[0], numbers - 0.5);
    }
    EXPECT_EQ(t.find("s" + std::to_string(strings - 1))->str[0],
              std::string(size_t(strings - 1) * 7, 'x'));
    EXPECT_EQ(r.read_strings("/meta/one")[0].size(), 5000u);
    fs::remove(path);
  }
}

TEST(Hdf5, WriterWithoutCommitLeavesNothing) {
  const std::string path = temp_file("abandoned.h5");
  std::string temp;
  {
    ResultWriter w(path);
    temp = w.temp_path();
    w.write_scalar("/summary/x", 1, "");
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(temp));
}

TEST(Hdf5, EmptyTable) {
  const std::string path = temp_file("empty.h5");
  {
    ResultWriter w(path);
    Table t;
    t.add_column("a", Table::Type::kU64);
    w.write_table("/ops", t);
    w.commit();
  }
  EXPECT_EQ(ResultReader(path).read_table("/ops").rows(), 0u);
  fs::remove(path);
}

}  // namespace
}  // namespace tiersim
