#include "models/config/loader.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>

#include "models/config/loader_detail.h"
#include "models/core/input_file.h"
#include "models/core/registry.h"

namespace tiersim {

namespace pb = google::protobuf;

namespace config_text {

// --- helpers -------------------------------------------------------------------------------

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// " (did you mean "x"?)" when a field of `desc` is close to `name`.
std::string suggest_field(const pb::Descriptor* desc, const std::string& name) {
  if (desc == nullptr) return "";
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (int i = 0; i < desc->field_count(); ++i) {
    const std::string& f = desc->field(i)->name();
    size_t d = edit_distance(name, f);
    if (d < best_d) {
      best_d = d;
      best = f;
    }
  }
  if (best.empty()) return "";
  if (best_d > std::max<size_t>(2, name.size() / 3)) {
    // Not close by edits: accept a field that starts like the name ("stacks" -> "stack_count").
    best.clear();
    const size_t n = std::min<size_t>(name.size(), 5);
    for (int i = 0; n >= 4 && i < desc->field_count(); ++i) {
      if (desc->field(i)->name().compare(0, n, name, 0, n) == 0) {
        best = desc->field(i)->name();
        break;
      }
    }
    if (best.empty()) return "";
  }
  return " (did you mean \"" + best + "\"?)";
}

// `s` cut to a readable length for a message: inputs may hold names of any size.
std::string cut(const std::string& s) {
  constexpr size_t kMax = 80;
  if (s.size() <= kMax) return s;
  return s.substr(0, kMax) + "...(" + std::to_string(s.size()) + " characters)";
}

// `s` in double quotes, cut to a readable length.
std::string quoted(const std::string& s) {
  return "\"" + cut(s) + "\"";
}

// Splits `message` of the form ...<prefix>A<middle>B"... into A and B; false when it is not.
bool two_quoted(const std::string& message, const std::string& prefix, const std::string& middle,
                std::string* a, std::string* b) {
  const size_t p = message.find(prefix);
  if (p == std::string::npos) return false;
  const size_t a_begin = p + prefix.size();
  const size_t m = message.find(middle, a_begin);
  if (m == std::string::npos) return false;
  const size_t b_begin = m + middle.size();
  const size_t close = message.find('"', b_begin);
  if (close == std::string::npos) return false;
  *a = message.substr(a_begin, m - a_begin);
  *b = message.substr(b_begin, close - b_begin);
  return true;
}

// Parses a path segment name or name[key] (the key may be empty, never contains ']').
bool parse_segment(const std::string& part, std::string* name, std::optional<std::string>* key) {
  size_t i = 0;
  if (part.empty() || !(std::isalpha(static_cast<unsigned char>(part[0])) || part[0] == '_')) {
    return false;
  }
  while (i < part.size() && (std::isalnum(static_cast<unsigned char>(part[i])) || part[i] == '_'))
    ++i;
  *name = part.substr(0, i);
  key->reset();
  if (i == part.size()) return true;
  if (part[i] != '[' || part.back() != ']') return false;
  const std::string inner = part.substr(i + 1, part.size() - i - 2);
  if (inner.find(']') != std::string::npos) return false;
  *key = inner;
  return true;
}

std::string enum_values(const pb::EnumDescriptor* e) {
  std::string out;
  for (int i = 0; i < e->value_count(); ++i) {
    if (e->value(i)->number() == 0) continue;  // *_UNSPECIFIED is not a choice
    if (!out.empty()) out += ", ";
    out += e->value(i)->name();
  }
  return out;
}

const pb::FieldDescriptor* name_field(const pb::Descriptor* d) {
  const pb::FieldDescriptor* f = d->FindFieldByName("name");
  return f && f->type() == pb::FieldDescriptor::TYPE_STRING && !f->is_repeated() ? f : nullptr;
}

std::string element_name(const pb::Message& element) {
  const pb::FieldDescriptor* nf = name_field(element.GetDescriptor());
  if (nf == nullptr) return "";
  return element.GetReflection()->GetString(element, nf);
}

// --- locating parse errors -----------------------------------------------------------------

// The value of `name: "..."` directly inside the message that opens at (line, column) of
// `text` (its "{" or "<"), or "" when it has none. Skips strings, comments and nested messages.
std::string element_name_ahead(const std::string& text, const std::vector<size_t>& line_starts,
                               int line, int column) {
  if (line < 0 || static_cast<size_t>(line) >= line_starts.size()) return "";
  size_t i = line_starts[line] + static_cast<size_t>(column) + 1;
  int depth = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '#') {
      while (i < text.size() && text[i] != '\n')
        ++i;
    } else if (c == '"' || c == '\'') {
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\') ++i;
      }
      ++i;
      continue;
    } else if (c == '{' || c == '<') {
      ++depth;
    } else if (c == '}' || c == '>') {
      if (depth-- == 0) return "";
    } else if (depth == 0 && text.compare(i, 4, "name") == 0 &&
               (i == 0 ||
                !(std::isalnum(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '_'))) {
      // name\s*:\s*"([^"]*)", scanned by hand (std::regex recurses per character).
      size_t j = i + 4;
      while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j])))
        ++j;
      if (j < text.size() && text[j] == ':') {
        ++j;
        while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j])))
          ++j;
        if (j < text.size() && text[j] == '"') {
          const size_t close = text.find('"', j + 1);
          if (close != std::string::npos) return text.substr(j + 1, close - j - 1);
        }
      }
    }
    ++i;
  }
  return "";
}

// Reconstructs the field path at (line, column) of a text-format document by scanning its
// tokens: the parser reports only a position, users need the path.
std::string text_path_at(const std::string& text, int line, int column,
                         const pb::Descriptor* root) {
  struct Frame {
    std::string path;
    const pb::Descriptor* desc;
    std::map<std::string, int> counts;
  };
  std::vector<Frame> stack{{"", root, {}}};
  std::vector<size_t> line_starts{0};
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') line_starts.push_back(i + 1);
  }
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  struct Silent : pb::io::ErrorCollector {
    void AddError(int, pb::io::ColumnNumber, const std::string&) override {}
  } silent;
  pb::io::Tokenizer tok(&input, &silent);
  tok.set_comment_style(pb::io::Tokenizer::SH_COMMENT_STYLE);

  std::string field;        // the field whose name or value we are in
  bool expect_name = true;  // the next identifier is a field name
  int list_depth = 0;
  auto full = [&](const std::string& f) {
    const Frame& fr = stack.back();
    if (f.empty()) return fr.path;
    return fr.path.empty() ? f : fr.path + "." + f;
  };
  while (tok.Next()) {
    const auto& t = tok.current();
    const bool at_or_past = t.line > line || (t.line == line && t.column >= column);
    if (at_or_past) {
      if (t.type == pb::io::Tokenizer::TYPE_IDENTIFIER && expect_name) return full(t.text);
      return full(field);
    }
    if (t.type == pb::io::Tokenizer::TYPE_IDENTIFIER && expect_name) {
      field = t.text;
      expect_name = false;
    } else if (t.text == "{" || t.text == "<") {
      const pb::Descriptor* d = stack.back().desc;
      const pb::FieldDescriptor* f = d ? d->FindFieldByName(field) : nullptr;
      std::string p = full(field);
      if (f && f->is_repeated()) {
        const int index = stack.back().counts[field]++;
        std::string key = f->message_type() && name_field(f->message_type())
                              ? element_name_ahead(text, line_starts, t.line, t.column)
                              : "";
        p += "[" + (key.empty() ? std::to_string(index) : key) + "]";
      }
      stack.push_back({p, f ? f->message_type() : nullptr, {}});
      expect_name = true;
    } else if (t.text == "}" || t.text == ">") {
      if (stack.size() > 1) stack.pop_back();
      field.clear();
      expect_name = list_depth == 0;
    } else if (t.text == "[") {
      ++list_depth;
    } else if (t.text == "]") {
      if (list_depth > 0) --list_depth;
      expect_name = list_depth == 0;
    } else if (t.text == ":") {
      expect_name = false;
    } else if (t.text == "," || t.text == ";") {
      expect_name = list_depth == 0;
    } else if (t.type != pb::io::Tokenizer::TYPE_IDENTIFIER || !expect_name) {
      // A value: the next identifier outside a list starts a new field.
      if (list_depth == 0 && t.text != "-") expect_name = true;
    }
  }
  return full(field);
}

class CollectingErrors : public pb::io::ErrorCollector {
 public:
  CollectingErrors(const std::string& file, const std::string& text) : file_(file), text_(text) {}
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    add(line, column, message);
  }
  void AddWarning(int line, pb::io::ColumnNumber column, const std::string& message) override {
    // Deprecated-field and similar warnings are errors here: nothing is silently accepted.
    add(line, column, message);
  }
  std::vector<ConfigIssue> issues;

 private:
  void add(int line, int column, std::string message) {
    const pb::Descriptor* root = config::Config::descriptor();
    std::string path = line >= 0 ? text_path_at(text_, line, column, root) : "";
    std::string type, name;
    if (two_quoted(message, "Message type \"", "\" has no field named \"", &type, &name)) {
      const pb::Descriptor* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(type);
      message = "unknown field " + quoted(name) + " in " + (d ? d->name() : quoted(type)) +
                suggest_field(d, name);
    } else if (two_quoted(message, "Unknown enumeration value of \"", "\" for field \"", &name,
                          &type)) {
      // The parser reports the position after the value: move back to the field's name.
      relocate_to_field(type, &line, &column);
      path = text_path_at(text_, line, column, root);
      std::string choices;
      if (const pb::FieldDescriptor* f = find_field_by_path(path)) {
        if (f->enum_type()) choices = "; expected one of " + enum_values(f->enum_type());
      }
      message = "unknown enum value " + quoted(name) + choices;
    }
    issues.push_back(ConfigIssue{{file_, line + 1}, path, message});
  }
  // Moves (line, column) back to the last occurrence of `field:` at or before it.
  void relocate_to_field(const std::string& field, int* line, int* column) const {
    int l = 0, c = 0, best_l = -1, best_c = -1;
    for (size_t i = 0; i < text_.size(); ++i) {
      if (l > *line || (l == *line && c > *column)) break;
      if (text_.compare(i, field.size(), field) == 0 &&
          (i == 0 ||
           !(std::isalnum(static_cast<unsigned char>(text_[i - 1])) || text_[i - 1] == '_'))) {
        size_t j = i + field.size();
        while (j < text_.size() && (text_[j] == ' ' || text_[j] == '\t'))
          ++j;
        if (j < text_.size() && text_[j] == ':') {
          best_l = l;
          best_c = c;
        }
      }
      if (text_[i] == '\n') {
        ++l;
        c = 0;
      } else {
        ++c;
      }
    }
    if (best_l >= 0) {
      *line = best_l;
      *column = best_c;
    }
  }
  // The descriptor of the last field in a path such as a.b[2].c (nullptr if unknown).
  static const pb::FieldDescriptor* find_field_by_path(const std::string& path) {
    const pb::Descriptor* d = config::Config::descriptor();
    const pb::FieldDescriptor* f = nullptr;
    std::stringstream ss(path);
    std::string seg;
    while (std::getline(ss, seg, '.')) {
      if (d == nullptr) return nullptr;
      seg = seg.substr(0, seg.find('['));
      f = d->FindFieldByName(seg);
      if (f == nullptr) return nullptr;
      d = f->message_type();
    }
    return f;
  }
  std::string file_, text_;
};

// Records where every field set in `msg` was written, from the parser's location tree.
void index_locations(const pb::Message& msg, const pb::TextFormat::ParseInfoTree* tree,
                     const std::string& prefix, const std::string& file, LocationMap* out) {
  if (tree == nullptr) return;
  std::vector<const pb::FieldDescriptor*> fields;
  msg.GetReflection()->ListFields(msg, &fields);
  for (const auto* f : fields) {
    const std::string base = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (f->is_repeated()) {
      const int n = msg.GetReflection()->FieldSize(msg, f);
      for (int i = 0; i < n; ++i) {
        const std::string p =
            prefix.empty() ? element_path(msg, f, i) : prefix + "." + element_path(msg, f, i);
        auto loc = tree->GetLocation(f, i);
        if (loc.line >= 0) (*out)[p] = SourceLocation{file, loc.line + 1};
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
          index_locations(msg.GetReflection()->GetRepeatedMessage(msg, f, i),
                          tree->GetTreeForNested(f, i), p, file, out);
        }
      }
    } else {
      auto loc = tree->GetLocation(f, -1);
      if (loc.line >= 0) (*out)[base] = SourceLocation{file, loc.line + 1};
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        index_locations(msg.GetReflection()->GetMessage(msg, f), tree->GetTreeForNested(f, -1),
                        base, file, out);
      }
    }
  }
}

// Marks `path` and everything under `msg` as set by --set[index].
void index_override(const pb::Message* msg, const std::string& path, int index, LocationMap* out) {
  (*out)[path] = SourceLocation{"--set", index};
  if (msg == nullptr) return;
  std::vector<const pb::FieldDescriptor*> fields;
  msg->GetReflection()->ListFields(*msg, &fields);
  for (const auto* f : fields) {
    if (f->is_repeated()) {
      const int n = msg->GetReflection()->FieldSize(*msg, f);
      for (int i = 0; i < n; ++i) {
        const std::string p = path + "." + element_path(*msg, f, i);
        index_override(f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE
                           ? &msg->GetReflection()->GetRepeatedMessage(*msg, f, i)
                           : nullptr,
                       p, index, out);
      }
    } else {
      index_override(f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE
                         ? &msg->GetReflection()->GetMessage(*msg, f)
                         : nullptr,
                     path + "." + f->name(), index, out);
    }
  }
}

}  // namespace config_text

namespace {

using namespace config_text;

std::unique_ptr<pb::Message> only_field(const pb::Message& src, const pb::FieldDescriptor* f) {
  std::unique_ptr<pb::Message> copy(src.New());
  copy->CopyFrom(src);
  std::vector<const pb::FieldDescriptor*> all;
  copy->GetReflection()->ListFields(*copy, &all);
  for (const auto* g : all) {
    if (g != f) copy->GetReflection()->ClearField(copy.get(), g);
  }
  return copy;
}

}  // namespace

// --- public --------------------------------------------------------------------------------

std::string element_path(const pb::Message& msg, const pb::FieldDescriptor* field, int index) {
  std::string key;
  if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
    key = element_name(msg.GetReflection()->GetRepeatedMessage(msg, field, index));
  }
  if (key.empty()) key = std::to_string(index);
  return field->name() + "[" + key + "]";
}

SourceLocation LoadedConfig::locate(const std::string& path) const {
  std::string p = path;
  while (!p.empty()) {
    auto it = locations.find(p);
    if (it != locations.end()) return it->second;
    const auto cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p = p.substr(0, cut);
  }
  // Never set anywhere: name the inputs, without a line.
  std::string all;
  for (const auto& f : files)
    all += (all.empty() ? "" : "+") + f;
  return SourceLocation{all, 0};
}

std::string LoadedConfig::resolved_text() const {
  std::string out;
  pb::TextFormat::Printer printer;
  printer.PrintToString(config, &out);
  return out;
}

config::Config parse_config_text(const std::string& text, const std::string& file_name,
                                 LocationMap* locations) {
  config::Config cfg;
  pb::TextFormat::Parser parser;
  CollectingErrors errors(file_name, text);
  parser.RecordErrorsTo(&errors);
  pb::TextFormat::ParseInfoTree tree;
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(text, &cfg) || !errors.issues.empty()) {
    if (errors.issues.empty()) {
      errors.issues.push_back(ConfigIssue{{file_name, 0}, "", "cannot parse"});
    }
    throw ConfigError(errors.issues);
  }
  if (locations != nullptr) index_locations(cfg, &tree, "", file_name, locations);
  return cfg;
}

void merge_config(pb::Message& dst, const pb::Message& src) {
  const pb::Reflection* sr = src.GetReflection();
  const pb::Reflection* dr = dst.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  sr->ListFields(src, &fields);
  for (const auto* f : fields) {
    if (f->is_repeated()) {
      const int n = sr->FieldSize(src, f);
      const bool by_name = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
                           name_field(f->message_type()) != nullptr;
      if (!by_name) {
        // Replace the whole list: clear, then merge a copy that holds only this field.
        dr->ClearField(&dst, f);
        dst.MergeFrom(*only_field(src, f));
        continue;
      }
      for (int i = 0; i < n; ++i) {
        const pb::Message& elem = sr->GetRepeatedMessage(src, f, i);
        const std::string name = element_name(elem);
        pb::Message* target = nullptr;
        if (!name.empty()) {
          for (int j = 0; j < dr->FieldSize(dst, f); ++j) {
            pb::Message* cand = dr->MutableRepeatedMessage(&dst, f, j);
            if (element_name(*cand) == name) {
              target = cand;
              break;
            }
          }
        }
        if (target == nullptr) {
          dr->AddMessage(&dst, f)->CopyFrom(elem);
        } else {
          merge_config(*target, elem);
        }
      }
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      merge_config(*dr->MutableMessage(&dst, f), sr->GetMessage(src, f));
    } else {
      // Singular scalar or enum: explicit presence, so even a zero overrides.
      dst.MergeFrom(*only_field(src, f));
    }
  }
}

namespace {

// A tenant's `base` files: each one's workload section merged in order under the tenant's own
// workload fields, their locations recorded under the tenant's path; `base` then cleared so the
// resolved config stands alone. Throws ConfigError at the base entry or inside the base file.
void resolve_tenant_bases(config::Config& part, const std::string& file, LocationMap& locations) {
  const auto* field = part.tenancy().GetDescriptor()->FindFieldByName("tenants");
  // Two tenants of one name in one file would merge into one: refused.
  std::set<std::string> names;
  for (int i = 0; i < part.tenancy().tenants_size(); ++i) {
    const std::string& n = part.tenancy().tenants(i).name();
    if (!n.empty() && !names.insert(n).second) {
      const std::string at = "tenancy.tenants[" + n + "].name";
      throw ConfigError(
          {ConfigIssue{locations.count(at) ? locations.at(at) : SourceLocation{file, 0}, at,
                       "two tenants named \"" + n +
                           "\" in one file (a later file "
                           "may add to a tenant by naming it again)"}});
    }
  }
  const size_t slash = file.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : file.substr(0, slash + 1);
  for (int i = 0; i < part.tenancy().tenants_size(); ++i) {
    config::Tenant& tenant = *part.mutable_tenancy()->mutable_tenants(i);
    if (tenant.base_size() == 0) continue;
    const std::string at = "tenancy." + element_path(part.tenancy(), field, i);
    config::Workload merged;
    LocationMap from_bases;  // a later base's locations replace an earlier one's
    for (int b = 0; b < tenant.base_size(); ++b) {
      const std::string& given = tenant.base(b);
      const std::string path = !given.empty() && given[0] == '/' ? given : dir + given;
      const std::string entry = at + ".base[" + std::to_string(b) + "]";
      std::string text;
      if (const std::string problem = read_input_file(path, &text); !problem.empty()) {
        throw ConfigError(
            {ConfigIssue{locations.count(entry) ? locations.at(entry) : SourceLocation{file, 0},
                         entry, "cannot read " + path + ": " + problem}});
      }
      LocationMap own;
      config::Config base = parse_config_text(text, path, &own);
      config::Config rest = base;
      rest.clear_workload();
      if (rest.ByteSizeLong() > 0) {
        throw ConfigError({ConfigIssue{{path, 0},
                                       entry,
                                       "a tenant's base file may set only `workload` (this one "
                                       "sets other sections)"}});
      }
      merge_config(merged, base.workload());
      for (const auto& [key, where] : own) {
        if (key.rfind("workload", 0) == 0) from_bases[at + "." + key] = where;
      }
    }
    // The tenant's own fields (located by the parse) keep their locations.
    for (const auto& [key, where] : from_bases)
      locations.emplace(key, where);
    merge_config(merged, tenant.workload());
    *tenant.mutable_workload() = merged;
    tenant.clear_base();
  }
}

}  // namespace

LoadedConfig load_config_unchecked(const std::vector<std::string>& files,
                                   const std::vector<std::string>& overrides) {
  LoadedConfig loaded;
  loaded.files = files;
  loaded.overrides = overrides;
  std::vector<ConfigIssue> issues;
  if (files.empty()) {
    throw ConfigError({ConfigIssue{{}, "", "no config files given"}});
  }
  for (const auto& file : files) {
    std::string text;
    if (const std::string problem = read_input_file(file, &text); !problem.empty()) {
      issues.push_back(ConfigIssue{{file, 0}, "", "cannot read config file: " + problem});
      continue;
    }
    try {
      config::Config part = parse_config_text(text, file, &loaded.locations);
      resolve_tenant_bases(part, file, loaded.locations);
      merge_config(loaded.config, part);
    } catch (const ConfigError& e) {
      issues.insert(issues.end(), e.issues().begin(), e.issues().end());
    }
  }
  if (!issues.empty()) throw ConfigError(issues);
  for (size_t i = 0; i < overrides.size(); ++i) {
    apply_override(loaded.config, overrides[i], static_cast<int>(i + 1), &loaded.locations);
  }
  return loaded;
}

LoadedConfig load_config(const std::vector<std::string>& files,
                         const std::vector<std::string>& overrides, ConfigScope scope) {
  LoadedConfig loaded = load_config_unchecked(files, overrides);
  validate_config(loaded, scope);
  return loaded;
}

}  // namespace tiersim
