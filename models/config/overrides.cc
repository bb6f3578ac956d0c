// `--set path=value` overrides: parsing a value for its field's type, fragment files
// (PATH=@FILE, PATH+=@FILE), appending elements (PATH[+]), and locating every problem at the
// argument (or the fragment's file and line).
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <sstream>

#include "models/config/loader.h"
#include "models/config/loader_detail.h"
#include "models/core/input_file.h"

namespace tiersim {

namespace pb = google::protobuf;
using namespace config_text;

namespace {

// --- --set value parsing -------------------------------------------------------------------

struct SetError {
  std::string path;
  std::string message;
};

bool parse_integer(const std::string& s, bool is_signed, long double* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  // Accept plain integers (decimal or 0x hex) and exact scientific forms such as 4e9.
  if (s.find_first_of(".eEpP") == std::string::npos || s.rfind("0x", 0) == 0) {
    if (is_signed) {
      long long v = std::strtoll(s.c_str(), &end, 0);
      *out = static_cast<long double>(v);
    } else {
      if (s[0] == '-') return false;
      unsigned long long v = std::strtoull(s.c_str(), &end, 0);
      *out = static_cast<long double>(v);
    }
    return errno == 0 && end && *end == '\0';
  }
  long double v = std::strtold(s.c_str(), &end);
  if (errno != 0 || !end || *end != '\0' || v != std::floor(v)) return false;
  *out = v;
  return true;
}

void set_scalar(pb::Message* msg, const pb::FieldDescriptor* f, int index, std::string value,
                const std::string& path) {
  const pb::Reflection* r = msg->GetReflection();
  const bool rep = index >= 0;
  auto fail = [&](const std::string& why) { throw SetError{path, why}; };
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front()) {
    value = value.substr(1, value.size() - 2);
  }
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64:
    case pb::FieldDescriptor::CPPTYPE_UINT32:
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      const bool is_signed = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32 ||
                             f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64;
      long double v = 0;
      if (!parse_integer(value, is_signed, &v)) {
        fail("expected " + std::string(is_signed ? "an integer" : "a non-negative integer") +
             ", got " + quoted(value));
      }
      long double lo = 0, hi = 0;
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_INT32:
          lo = std::numeric_limits<int32_t>::min();
          hi = std::numeric_limits<int32_t>::max();
          break;
        case pb::FieldDescriptor::CPPTYPE_INT64:
          lo = static_cast<long double>(std::numeric_limits<int64_t>::min());
          hi = static_cast<long double>(std::numeric_limits<int64_t>::max());
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT32:
          hi = std::numeric_limits<uint32_t>::max();
          break;
        default:
          hi = static_cast<long double>(std::numeric_limits<uint64_t>::max());
      }
      if (v < lo || v > hi) fail("value " + value + " is out of range for " + f->type_name());
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_INT32:
          rep ? r->SetRepeatedInt32(msg, f, index, static_cast<int32_t>(v))
              : r->SetInt32(msg, f, static_cast<int32_t>(v));
          break;
        case pb::FieldDescriptor::CPPTYPE_INT64:
          rep ? r->SetRepeatedInt64(msg, f, index, static_cast<int64_t>(v))
              : r->SetInt64(msg, f, static_cast<int64_t>(v));
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT32:
          rep ? r->SetRepeatedUInt32(msg, f, index, static_cast<uint32_t>(v))
              : r->SetUInt32(msg, f, static_cast<uint32_t>(v));
          break;
        default:
          rep ? r->SetRepeatedUInt64(msg, f, index, static_cast<uint64_t>(v))
              : r->SetUInt64(msg, f, static_cast<uint64_t>(v));
      }
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      errno = 0;
      char* end = nullptr;
      double v = std::strtod(value.c_str(), &end);
      if (value.empty() || errno != 0 || !end || *end != '\0' || !std::isfinite(v)) {
        fail("expected a finite number, got " + quoted(value));
      }
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE) {
        rep ? r->SetRepeatedDouble(msg, f, index, v) : r->SetDouble(msg, f, v);
      } else {
        rep ? r->SetRepeatedFloat(msg, f, index, static_cast<float>(v))
            : r->SetFloat(msg, f, static_cast<float>(v));
      }
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (value == "true" || value == "1") {
        v = true;
      } else if (value == "false" || value == "0") {
        v = false;
      } else {
        fail("expected true or false, got " + quoted(value));
        return;
      }
      rep ? r->SetRepeatedBool(msg, f, index, v) : r->SetBool(msg, f, v);
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_STRING:
      rep ? r->SetRepeatedString(msg, f, index, value) : r->SetString(msg, f, value);
      return;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* ev = f->enum_type()->FindValueByName(value);
      if (ev == nullptr || ev->number() == 0) {
        fail("unknown enum value " + quoted(value) + "; expected one of " +
             enum_values(f->enum_type()));
      }
      rep ? r->SetRepeatedEnum(msg, f, index, ev) : r->SetEnum(msg, f, ev);
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  fail("internal: not a scalar field");
}

std::vector<std::string> split_list(const std::string& v) {
  // "[a, b, c]" -> {"a", "b", "c"}; quotes are kept for set_scalar to strip.
  std::vector<std::string> out;
  std::string inner = v.substr(1, v.size() - 2);
  std::stringstream ss(inner);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

// A copy of `src` with every field but `f` cleared.
// "{a: 1}" -> "a: 1": message values may be written with or without braces.
std::string strip_braces(const std::string& v) {
  const auto b = v.find_first_not_of(" \t");
  const auto e = v.find_last_not_of(" \t");
  if (b != std::string::npos && v[b] == '{' && v[e] == '}') return v.substr(b + 1, e - b - 1);
  return v;
}

// Appends a default element to a repeated scalar field (set_scalar then gives it its value).
void add_default_scalar(pb::Message* msg, const pb::Reflection* r, const pb::FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      r->AddInt32(msg, f, 0);
      break;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      r->AddInt64(msg, f, 0);
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      r->AddUInt32(msg, f, 0);
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      r->AddUInt64(msg, f, 0);
      break;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      r->AddDouble(msg, f, 0);
      break;
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      r->AddFloat(msg, f, 0);
      break;
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      r->AddBool(msg, f, false);
      break;
    case pb::FieldDescriptor::CPPTYPE_STRING:
      r->AddString(msg, f, "");
      break;
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      r->AddEnumValue(msg, f, 0);
      break;
    default:
      break;
  }
}

// Parse errors of a fragment file given to --set PATH=@FILE: at the file's lines, under the
// field path the fragment sets.
class FragmentErrors : public pb::io::ErrorCollector {
 public:
  FragmentErrors(std::string file, std::string path)
      : file_(std::move(file)), path_(std::move(path)) {}
  void AddError(int line, pb::io::ColumnNumber, const std::string& message) override {
    issues.push_back(ConfigIssue{{file_, line + 1}, path_, message});
  }
  void AddWarning(int line, pb::io::ColumnNumber, const std::string& message) override {
    issues.push_back(ConfigIssue{{file_, line + 1}, path_, message});
  }
  std::vector<ConfigIssue> issues;

 private:
  std::string file_, path_;
};

}  // namespace

void apply_override(config::Config& config, const std::string& assignment, int index,
                    LocationMap* locations) {
  const auto eq = assignment.find('=');
  auto issue = [&](const std::string& path, const std::string& message) {
    return ConfigError({ConfigIssue{{"--set", index}, path, message}});
  };
  if (eq == std::string::npos || eq == 0) {
    throw issue(assignment, "expected field.path=value");
  }
  std::string path = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);
  // PATH=@FILE replaces the message at PATH with a fragment file's; PATH+=@FILE merges it.
  const bool merge_file = !path.empty() && path.back() == '+';
  if (merge_file) path.pop_back();
  const std::optional<std::string> file = !value.empty() && value[0] == '@'
                                              ? std::optional<std::string>(value.substr(1))
                                              : std::nullopt;
  if (merge_file && !file) throw issue(path, "+= merges a fragment file: PATH+=@FILE");
  if (file && file->empty()) throw issue(path, "@ needs a fragment file name: PATH=@FILE");

  // Split the path into segments name[key].
  struct Segment {
    std::string name;
    std::optional<std::string> key;
  };
  std::vector<Segment> segs;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    Segment s;
    if (!parse_segment(part, &s.name, &s.key)) {
      throw issue(cut(path), "malformed path segment " + quoted(part));
    }
    segs.push_back(s);
  }
  if (segs.empty()) throw issue(path, "empty field path");

  pb::Message* msg = &config;
  std::string canonical;
  // A message value: {fields} merged, or a fragment file replacing (or merged into) it.
  auto patch_message = [&](pb::Message* target, const std::string& where) {
    std::unique_ptr<pb::Message> patch(target->New());
    if (file) {
      std::string text;
      if (const std::string problem = read_input_file(*file, &text); !problem.empty()) {
        throw SetError{where, "cannot read fragment file " + quoted(*file) + ": " + problem};
      }
      FragmentErrors errors(*file, where);
      pb::TextFormat::Parser parser;
      parser.RecordErrorsTo(&errors);
      if (!parser.ParseFromString(text, patch.get()) || !errors.issues.empty()) {
        if (errors.issues.empty()) {
          errors.issues.push_back(
              ConfigIssue{{*file, 0},
                          where,
                          "cannot parse as " + target->GetDescriptor()->name() + " text format"});
        }
        throw ConfigError(errors.issues);
      }
      if (!merge_file) target->Clear();
    } else if (!pb::TextFormat::ParseFromString(strip_braces(value), patch.get())) {
      throw SetError{where, "cannot parse " + quoted(value) + " as " +
                                target->GetDescriptor()->name() + " text format"};
    }
    merge_config(*target, *patch);
    if (locations) index_override(patch.get(), where, index, locations);
  };
  auto scalar_only = [&](const std::string& where) {
    if (file) {
      throw SetError{where, "a fragment file (@FILE) sets a message; this is a scalar field"};
    }
  };
  try {
    for (size_t i = 0; i < segs.size(); ++i) {
      const Segment& s = segs[i];
      const bool last = i + 1 == segs.size();
      const pb::Descriptor* d = msg->GetDescriptor();
      const pb::FieldDescriptor* f = d->FindFieldByName(s.name);
      const std::string here = canonical.empty() ? s.name : canonical + "." + s.name;
      if (f == nullptr) {
        throw SetError{
            canonical.empty() ? cut(s.name) : canonical + "." + cut(s.name),
            "unknown field " + quoted(s.name) + " in " + d->name() + suggest_field(d, s.name)};
      }
      const pb::Reflection* r = msg->GetReflection();
      if (last && !s.key && value == "!clear") {
        // Removes the field, section or list (a baseline without a mechanism's section).
        r->ClearField(msg, f);
        if (locations) index_override(nullptr, here, index, locations);
        return;
      }
      if (last && value.empty() && f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        throw SetError{here,
                       "empty value: give fields to merge ({...}), or !clear to remove "
                       "the section"};
      }
      if (f->is_repeated()) {
        if (!s.key) {
          if (!last) throw SetError{here, "repeated field needs an [index] or [name]"};
          if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
            throw SetError{here, "set one element: " + s.name + "[index or name].field=value"};
          }
          scalar_only(here);
          if (value.size() < 2 || value.front() != '[' || value.back() != ']') {
            throw SetError{here, "a repeated field takes a list such as [1, 2]"};
          }
          r->ClearField(msg, f);
          auto items = split_list(value);
          for (size_t k = 0; k < items.size(); ++k) {
            // Grow by one default element, then set it.
            add_default_scalar(msg, r, f);
            set_scalar(msg, f, static_cast<int>(k), items[k], here + "[" + std::to_string(k) + "]");
          }
          if (locations) index_override(nullptr, here, index, locations);
          return;
        }
        const int n = r->FieldSize(*msg, f);
        const std::string& key = *s.key;
        if (key == "+") {
          // [+] appends an element: a message (then set through the rest of the path or by the
          // value) or a scalar (set by the value).
          const std::string at = here + "[" + std::to_string(n) + "]";
          if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
            pb::Message* parent = msg;
            msg = r->AddMessage(msg, f);
            canonical = at;
            if (last) {
              patch_message(msg, canonical);
              // Errors about the new element name it as later --set arguments would.
              const std::string named =
                  (here.size() > s.name.size() ? here.substr(0, here.size() - s.name.size())
                                               : std::string()) +
                  element_path(*parent, f, n);
              if (locations && named != at) index_override(msg, named, index, locations);
            }
            continue;
          }
          if (!last) throw SetError{here, "\"" + s.name + "\" has no fields"};
          scalar_only(at);
          add_default_scalar(msg, r, f);
          set_scalar(msg, f, n, value, at);
          if (locations) index_override(nullptr, at, index, locations);
          return;
        }
        // Find the element by index or by name.
        int found = -1;
        const bool numeric = !key.empty() && std::all_of(key.begin(), key.end(), ::isdigit);
        if (numeric) {
          // Digits only: an index past the list (of any length) is out of range.
          const std::string digits = key.substr(std::min(key.find_first_not_of('0'), key.size()));
          if (digits.size() > 9 || (found = digits.empty() ? 0 : std::stoi(digits)) >= n) {
            throw SetError{here + "[" + cut(key) + "]", "index out of range (" + s.name + " has " +
                                                            std::to_string(n) + " elements)"};
          }
        } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
          std::string names;
          for (int j = 0; j < n; ++j) {
            const std::string nm = element_name(r->GetRepeatedMessage(*msg, f, j));
            if (nm == key) found = j;
            names += (names.empty() ? "" : ", ") + nm;
          }
          if (found < 0) {
            throw SetError{here + "[" + cut(key) + "]",
                           "no element named " + quoted(key) + " (have: " + names + ")"};
          }
        } else {
          throw SetError{here + "[" + cut(key) + "]", "index must be a number"};
        }
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
          canonical = canonical.empty() ? element_path(*msg, f, found)
                                        : canonical + "." + element_path(*msg, f, found);
          msg = r->MutableRepeatedMessage(msg, f, found);
          if (last) patch_message(msg, canonical);
          continue;
        }
        if (!last) throw SetError{here, "\"" + s.name + "\" has no fields"};
        const std::string p = here + "[" + key + "]";
        scalar_only(p);
        set_scalar(msg, f, found, value, p);
        if (locations) index_override(nullptr, p, index, locations);
        return;
      }
      if (s.key) throw SetError{here, "\"" + s.name + "\" is not a repeated field"};
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        msg = r->MutableMessage(msg, f);
        canonical = here;
        if (last) patch_message(msg, canonical);
        continue;
      }
      if (!last) throw SetError{here, "\"" + s.name + "\" has no fields"};
      scalar_only(here);
      set_scalar(msg, f, -1, value, here);
      if (locations) index_override(nullptr, here, index, locations);
      return;
    }
  } catch (const SetError& e) {
    throw issue(e.path, e.message);
  }
}

}  // namespace tiersim
