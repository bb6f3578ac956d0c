#include "memory/dram_address.h"

namespace tiersim {

namespace {
bool log2_exact(uint64_t v, uint32_t* bits) {
  if (v == 0 || (v & (v - 1)) != 0) return false;
  uint32_t b = 0;
  while ((uint64_t{1} << b) < v)
    ++b;
  *bits = b;
  return true;
}
}  // namespace

std::string DramAddressMapping::parse(const std::string& order, const DramCounts& counts,
                                      DramAddressMapping* out) {
  static const char* kCodes[kFields] = {"Ch", "Pc", "Bg", "Ba", "Ro", "Co"};
  const uint64_t sizes[kFields] = {counts.channels,    counts.pseudo_channels,
                                   counts.bank_groups, counts.banks_per_group,
                                   counts.rows,        counts.columns};
  DramAddressMapping m;
  uint32_t bits[kFields];
  for (int f = 0; f < kFields; ++f) {
    if (!log2_exact(sizes[f], &bits[f])) {
      return std::string("the count of ") + kCodes[f] + " (" + std::to_string(sizes[f]) +
             ") is not a power of two";
    }
  }
  uint32_t offset_bits;
  if (!log2_exact(counts.access_bytes, &offset_bits)) {
    return "access_bytes (" + std::to_string(counts.access_bytes) + ") is not a power of two";
  }
  if (order.size() != 2 * kFields) {
    return "\"" + order + "\" must list each of Ch, Pc, Bg, Ba, Ro, Co exactly once";
  }
  bool seen[kFields] = {};
  // Walk from the least significant field (the end of the string) upwards.
  uint32_t shift = offset_bits;
  for (int i = kFields - 1; i >= 0; --i) {
    const std::string code = order.substr(2 * static_cast<size_t>(i), 2);
    int f = -1;
    for (int k = 0; k < kFields; ++k) {
      if (code == kCodes[k]) f = k;
    }
    if (f < 0) return "unknown field \"" + code + "\" in \"" + order + "\" (use Ch Pc Bg Ba Ro Co)";
    if (seen[f]) return "field " + code + " appears twice in \"" + order + "\"";
    seen[f] = true;
    m.slices_[f] = Slice{shift, bits[f]};
    shift += bits[f];
  }
  if (shift > 63) return "the address space exceeds 2^63 bytes";
  m.total_bits_ = shift;
  m.pseudo_channels_ = counts.pseudo_channels;
  *out = m;
  return "";
}

DramCoordinates DramAddressMapping::decode(uint64_t address) const {
  auto get = [&](Field f) {
    const Slice& s = slices_[f];
    return static_cast<uint32_t>((address >> s.shift) & ((uint64_t{1} << s.bits) - 1));
  };
  return DramCoordinates{get(kCh), get(kPc), get(kBg), get(kBa), get(kRo), get(kCo)};
}

}  // namespace tiersim
