#include "services/gateway/aws_shapes.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/json.h"
#include "services/gateway/aws_names.h"

namespace coffer::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// Coffer's messages do not recurse; the bound only keeps a future one from
// looping forever here.
constexpr int kMaxShapeDepth = 16;

class ShapeBuilder {
 public:
  ShapeBuilder(Backend backend, bool request) : backend_(backend), request_(request) {}

  AwsShape Message(const Descriptor* type, int depth) const {
    AwsShape shape;
    shape.type = "structure";
    if (depth > kMaxShapeDepth) return shape;
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* f = type->field(i);
      std::string name = internal::MemberName(backend_, f);
      if (name.empty()) continue;
      AwsShape member = Field(f, depth);
      member.always_sent = !request_ && internal::AlwaysSent(f);
      shape.members.emplace_back(std::move(name), std::move(member));
    }
    if (request_) {
      for (const internal::ExtraMember* e : internal::ExtraMembersOf(type)) {
        shape.members.emplace_back(e->member, Extra(*e, type, depth));
      }
    } else {
      for (const internal::DerivedMember* d : internal::DerivedMembersOf(type)) {
        AwsShape derived;
        derived.type = d->kind;
        derived.enum_values = d->enum_values;
        derived.note = "derived";
        shape.members.emplace_back(d->member, std::move(derived));
      }
    }
    return shape;
  }

 private:
  AwsShape Field(const FieldDescriptor* f, int depth) const {
    if (f->is_map()) {
      AwsShape map;
      map.type = "map";
      map.element.push_back(Value(f->message_type()->map_value(), depth, /*in_map=*/true));
      return map;
    }
    if (f->is_repeated()) {
      AwsShape list;
      list.type = "list";
      list.element.push_back(Value(f, depth, /*in_map=*/false));
      return list;
    }
    return Value(f, depth, /*in_map=*/false);
  }

  AwsShape Value(const FieldDescriptor* f, int depth, bool in_map) const {
    AwsShape shape;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        shape.type = f->type() == FieldDescriptor::TYPE_BYTES ? "blob" : "string";
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        shape.type = "boolean";
        break;
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
        shape.type = "integer";
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT:
        shape.type = "number";
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        shape.type = "string";
        for (const auto& [name, value] : internal::EnumTableFor(f->enum_type()).values) {
          shape.enum_values.push_back(name);
        }
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        const Descriptor* type = f->message_type();
        if (type->full_name() == "google.protobuf.Timestamp") {
          shape.type = "timestamp";
        } else if (const FieldDescriptor* list = internal::ListWrapperField(type);
                   in_map && list != nullptr) {
          shape = Field(list, depth + 1);
        } else {
          shape = Message(type, depth + 1);
        }
        break;
      }
    }
    return shape;
  }

  AwsShape Extra(const internal::ExtraMember& e, const Descriptor* type, int depth) const {
    AwsShape shape;
    absl::string_view kind = e.kind;
    if (absl::StartsWith(kind, "list<")) {
      shape.type = "list";
      AwsShape element;
      element.type = std::string(kind.substr(5, kind.size() - 6));
      shape.element.push_back(std::move(element));
    } else {
      shape.type = std::string(kind);
    }
    switch (e.policy) {
      case internal::ExtraPolicy::kIgnore:
        shape.note = "ignored";
        break;
      case internal::ExtraPolicy::kOnlyEmpty:
        shape.note = "only empty";
        break;
      case internal::ExtraPolicy::kOnlyValue:
        shape.note = absl::StrCat("only ", e.value);
        shape.enum_values.push_back(e.value);
        break;
      case internal::ExtraPolicy::kAliasOf:
        if (const FieldDescriptor* f = type->FindFieldByName(e.value)) shape = Field(f, depth);
        shape.note = absl::StrCat("alias of ", e.value);
        break;
    }
    return shape;
  }

  Backend backend_;
  bool request_;
};

void AppendJson(const AwsShape& shape, std::string* out) {
  absl::StrAppend(out, "{\"type\":", JsonQuote(shape.type));
  if (!shape.enum_values.empty()) {
    out->append(",\"enum\":[");
    for (size_t i = 0; i < shape.enum_values.size(); ++i) {
      if (i > 0) out->push_back(',');
      out->append(JsonQuote(shape.enum_values[i]));
    }
    out->push_back(']');
  }
  if (shape.type == "structure") {
    out->append(",\"members\":{");
    for (size_t i = 0; i < shape.members.size(); ++i) {
      if (i > 0) out->push_back(',');
      absl::StrAppend(out, JsonQuote(shape.members[i].first), ":");
      AppendJson(shape.members[i].second, out);
    }
    out->push_back('}');
  }
  if (!shape.element.empty()) {
    out->append(",\"member\":");
    AppendJson(shape.element.front(), out);
  }
  if (shape.always_sent) out->append(",\"always\":true");
  if (!shape.note.empty()) absl::StrAppend(out, ",\"note\":", JsonQuote(shape.note));
  out->push_back('}');
}

}  // namespace

AwsShape AwsRequestShape(const AwsOperation& op) {
  return ShapeBuilder(op.backend, /*request=*/true).Message(op.method->input_type(), 0);
}

AwsShape AwsResponseShape(const AwsOperation& op) {
  return ShapeBuilder(op.backend, /*request=*/false).Message(op.method->output_type(), 0);
}

std::string AwsShapeJson(const AwsShape& shape) {
  std::string out;
  AppendJson(shape, &out);
  return out;
}

}  // namespace coffer::gateway
