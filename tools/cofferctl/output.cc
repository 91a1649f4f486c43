#include "tools/cofferctl/output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/status_macros.h"
#include "tools/cofferctl/text_output.h"

namespace coffer::cofferctl {
namespace {

namespace pb = google::protobuf;

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " '", path, "': ", std::strerror(errno)));
}

}  // namespace

std::string IndentJson(absl::string_view in) {
  std::string out;
  int depth = 0;
  bool in_string = false;
  auto newline = [&] {
    out.push_back('\n');
    out.append(static_cast<size_t>(depth) * 2, ' ');
  };
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < in.size()) {
        out.push_back(in[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        out.push_back(c);
        break;
      case '{':
      case '[':
        out.push_back(c);
        if (i + 1 < in.size() && (in[i + 1] == '}' || in[i + 1] == ']')) {
          out.push_back(in[++i]);  // empty object or array
        } else {
          ++depth;
          newline();
        }
        break;
      case '}':
      case ']':
        --depth;
        newline();
        out.push_back(c);
        break;
      case ',':
        out.push_back(c);
        newline();
        break;
      case ':':
        out.append(": ");
        break;
      case ' ':
      case '\n':
      case '\t':
      case '\r':
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<std::string> FormatJsonLine(const pb::Message& message) {
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = false;
  options.add_whitespace = false;
  std::string compact;
  auto status = pb::util::MessageToJsonString(message, &compact, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the response as JSON: ", status.message().ToString()));
  }
  return compact + "\n";
}

absl::StatusOr<std::string> FormatJson(const pb::Message& message) {
  COFFER_ASSIGN_OR_RETURN(std::string line, FormatJsonLine(message));
  line.pop_back();  // the newline; IndentJson does the layout
  return IndentJson(line) + "\n";
}

absl::StatusOr<std::string> TakeBytesField(pb::Message& message, absl::string_view field_name) {
  const pb::Descriptor& type = *message.GetDescriptor();
  const pb::FieldDescriptor* field = nullptr;
  if (field_name.empty()) {
    for (int i = 0; i < type.field_count() && field == nullptr; ++i) {
      const pb::FieldDescriptor* f = type.field(i);
      if (f->type() == pb::FieldDescriptor::TYPE_BYTES && !f->is_repeated()) field = f;
    }
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--output-file: ", type.full_name(), " has no bytes field"));
    }
  } else {
    std::string name(field_name);
    for (char& c : name) {
      if (c == '-') c = '_';
    }
    field = type.FindFieldByName(name);
    if (field == nullptr || field->type() != pb::FieldDescriptor::TYPE_BYTES ||
        field->is_repeated()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--output-field: ", type.full_name(), " has no bytes field '", name, "'"));
    }
  }
  const pb::Reflection& r = *message.GetReflection();
  std::string value = r.GetString(message, field);
  r.ClearField(&message, field);
  return value;
}

absl::Status WritePrivateFile(const std::string& path, absl::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot open", path);
  absl::Status status;
  if (::fchmod(fd, 0600) != 0) status = ErrnoError("cannot chmod", path);
  size_t done = 0;
  while (status.ok() && done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = ErrnoError("cannot write", path);
    } else {
      done += static_cast<size_t>(n);
    }
  }
  if (::close(fd) != 0 && status.ok()) status = ErrnoError("cannot close", path);
  return status;
}

absl::StatusOr<std::string> RenderResponse(pb::Message& response, const OutputOptions& options) {
  if (!options.file.empty()) {
    COFFER_ASSIGN_OR_RETURN(std::string bytes, TakeBytesField(response, options.field));
    COFFER_RETURN_IF_ERROR(WritePrivateFile(options.file, bytes));
  }
  switch (options.format) {
    case OutputFormat::kTable:
      return FormatTable(response, options.table_columns);
    case OutputFormat::kText:
      return FormatText(response, options.text_value);
    case OutputFormat::kJson:
      break;
  }
  return FormatJson(response);
}

}  // namespace coffer::cofferctl
