// Physical address to DRAM coordinates: a bit-field order string, most significant field
// first, e.g. "RoBaCoBgPcCh" (row, bank, column, bank group, pseudo-channel, channel; the byte
// offset within one access is always the least significant bits). Every field appears once and
// every count is a power of two. Plain C++.
//
// The default "RoBaCoBgPcCh" rotates consecutive accesses across channels, then pseudo-channels,
// then bank groups, so a stream uses every pseudo-channel and alternates bank groups within
// each (tCCD_S, not tCCD_L), while walking a row's columns for row hits. A mapping that puts
// Ch and Pc at the top ("ChPcRoBaBgCo") keeps a stream in one pseudo-channel: the classic way
// to lose most of a stack's bandwidth.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace tiersim {

struct DramCounts {
  uint32_t channels, pseudo_channels, bank_groups, banks_per_group, rows, columns, access_bytes;
};

struct DramCoordinates {
  uint32_t channel, pseudo_channel, bank_group, bank, row, column;
};

class DramAddressMapping {
 public:
  static constexpr const char* kDefaultOrder = "RoBaCoBgPcCh";

  // Parses `order` for `counts`; returns "" on success or what is wrong.
  static std::string parse(const std::string& order, const DramCounts& counts,
                           DramAddressMapping* out);

  // Addresses wrap modulo the stack's capacity.
  DramCoordinates decode(uint64_t address) const;
  uint64_t capacity_bytes() const { return uint64_t{1} << total_bits_; }
  // Index of the pseudo-channel controller: channel * pseudo_channels + pseudo_channel.
  uint32_t controller_index(const DramCoordinates& d) const {
    return d.channel * pseudo_channels_ + d.pseudo_channel;
  }

 private:
  enum Field { kCh, kPc, kBg, kBa, kRo, kCo, kFields };
  struct Slice {
    uint32_t shift = 0, bits = 0;
  };
  std::array<Slice, kFields> slices_{};
  uint32_t total_bits_ = 0;
  uint32_t pseudo_channels_ = 1;
};

}  // namespace tiersim
