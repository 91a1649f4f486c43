#include "tests/services/gateway/sample_messages.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/json.h"

namespace coffer::gateway::testing {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void FillValue(Message* m, const FieldDescriptor* f, int depth);

void Fill(Message* m, int depth) {
  if (depth > 8) return;
  const auto* type = m->GetDescriptor();
  if (type->full_name() == "google.protobuf.Timestamp") {
    m->GetReflection()->SetInt64(m, type->FindFieldByName("seconds"), 1700000000);
    m->GetReflection()->SetInt32(m, type->FindFieldByName("nanos"), 123456789);
    return;
  }
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    if (f->is_map()) {
      Message* entry = m->GetReflection()->AddMessage(m, f);
      entry->GetReflection()->SetString(entry, f->message_type()->map_key(), "k");
      FillValue(entry, f->message_type()->map_value(), depth + 1);
    } else {
      FillValue(m, f, depth);
    }
  }
}

void FillValue(Message* m, const FieldDescriptor* f, int depth) {
  const Reflection* r = m->GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v;
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        v = std::string("\x00\x01\xfe\xff", 4);
      } else if (f->name() == "arn" || absl::EndsWith(f->name(), "_arn")) {
        v = "arn:coffer:service:local:000000000000:thing/x";
      } else {
        v = f->name();
      }
      rep ? r->AddString(m, f, v) : r->SetString(m, f, v);
      return;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      rep ? r->AddBool(m, f, true) : r->SetBool(m, f, true);
      return;
    case FieldDescriptor::CPPTYPE_INT32:
      rep ? r->AddInt32(m, f, 7) : r->SetInt32(m, f, 7);
      return;
    case FieldDescriptor::CPPTYPE_INT64:
      rep ? r->AddInt64(m, f, 7) : r->SetInt64(m, f, 7);
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      rep ? r->AddUInt32(m, f, 7) : r->SetUInt32(m, f, 7);
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      rep ? r->AddUInt64(m, f, 7) : r->SetUInt64(m, f, 7);
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      rep ? r->AddDouble(m, f, 7.5) : r->SetDouble(m, f, 7.5);
      return;
    case FieldDescriptor::CPPTYPE_FLOAT:
      rep ? r->AddFloat(m, f, 7.5f) : r->SetFloat(m, f, 7.5f);
      return;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* last = f->enum_type()->value(f->enum_type()->value_count() - 1);
      rep ? r->AddEnum(m, f, last) : r->SetEnum(m, f, last);
      return;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      Fill(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f), depth + 1);
      return;
  }
}

void AppendSample(const AwsShape& shape, std::string* out) {
  const bool only_empty = shape.note == "only empty";
  if (shape.type == "structure") {
    out->push_back('{');
    bool first = true;
    for (const auto& [name, member] : shape.members) {
      if (absl::StartsWith(member.note, "alias of")) continue;
      if (!first) out->push_back(',');
      first = false;
      absl::StrAppend(out, JsonQuote(name), ":");
      AppendSample(member, out);
    }
    out->push_back('}');
  } else if (shape.type == "list") {
    if (only_empty) {
      out->append("[]");
    } else {
      out->push_back('[');
      AppendSample(shape.element.front(), out);
      out->push_back(']');
    }
  } else if (shape.type == "map") {
    out->append("{\"k\":");
    AppendSample(shape.element.front(), out);
    out->push_back('}');
  } else if (shape.type == "string") {
    out->append(only_empty                  ? "\"\""
                : shape.enum_values.empty() ? "\"x\""
                                            : JsonQuote(shape.enum_values.front()));
  } else if (shape.type == "boolean") {
    out->append(only_empty ? "false" : "true");
  } else if (shape.type == "integer") {
    out->append("1");
  } else if (shape.type == "number") {
    out->append("1.5");
  } else if (shape.type == "timestamp") {
    out->append("1700000000.5");
  } else if (shape.type == "blob") {
    out->append("\"aGk=\"");
  } else {
    out->append("null");
  }
}

}  // namespace

void FillEveryField(Message* m) { Fill(m, 0); }

std::string SampleRequestJson(const AwsShape& shape) {
  std::string out;
  AppendSample(shape, &out);
  return out;
}

}  // namespace coffer::gateway::testing
