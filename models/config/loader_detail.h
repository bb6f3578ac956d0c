// Helpers the config loader (loader.cc) and its --set overrides (overrides.cc) share: field
// suggestions, quoting for messages, path segments, element names and override locations.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <optional>
#include <string>

#include "models/config/loader.h"

namespace tiersim::config_text {

// " (did you mean \"x\"?)" for the closest field name of `desc`, or "".
std::string suggest_field(const google::protobuf::Descriptor* desc, const std::string& name);
// A user's text cut to a readable length.
std::string cut(const std::string& s);
// The text in double quotes, cut.
std::string quoted(const std::string& s);
// Splits "name" or "name[key]".
bool parse_segment(const std::string& part, std::string* name, std::optional<std::string>* key);
// The enum's values (without *_UNSPECIFIED), comma-separated.
std::string enum_values(const google::protobuf::EnumDescriptor* e);
// A repeated element's `name` field, or "".
std::string element_name(const google::protobuf::Message& element);
// Records that `path` (and every field of `msg` below it) came from the index-th --set.
void index_override(const google::protobuf::Message* msg, const std::string& path, int index,
                    LocationMap* out);

}  // namespace tiersim::config_text
