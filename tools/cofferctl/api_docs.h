// api_docs.h: the API's own comments (proto/coffer/*/v1/*.proto) for
// --help. Generated code keeps no comments, so the build embeds a descriptor
// set made with --include_source_info (tools/cofferctl/CMakeLists.txt), and
// this reads it once, on first use.
//
//   std::string what = MethodComment(*method);  // "Returns a key's metadata. ..."
//   std::string range = FieldComment(*field);   // "7-30; 0 means the default, 30."
#pragma once

#include <string>

#include "google/protobuf/descriptor.h"

namespace coffer::cofferctl {

// The comment above the method or field in its .proto, trimmed, lines kept;
// "" when there is none (or the descriptor set does not have the element).
std::string MethodComment(const google::protobuf::MethodDescriptor& method);
std::string FieldComment(const google::protobuf::FieldDescriptor& field);

// `comment` with `indent` spaces before every line, each line ending with a
// newline; "" for "".
std::string Indented(const std::string& comment, int indent);

}  // namespace coffer::cofferctl
