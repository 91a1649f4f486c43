#include "tools/cofferctl/short_forms.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "tools/cofferctl/command_table.h"
#include "tools/cofferctl/operation_docs.h"

namespace coffer::cofferctl {
namespace {

namespace pb = google::protobuf;

// Whether `field` of `message` holds something (what --cli-input-json set).
bool IsSet(const pb::Message& message, const pb::FieldDescriptor& field) {
  const pb::Reflection& r = *message.GetReflection();
  return field.is_repeated() ? r.FieldSize(message, &field) > 0 : r.HasField(message, &field);
}

}  // namespace

const std::vector<ShortForm>& ShortForms() {
  // IAM's own verbs for access keys: the AWS CLI has create-access-key,
  // list-access-keys, update-access-key --status Active|Inactive and
  // delete-access-key.
  static const auto* const kShortForms = new std::vector<ShortForm>{
      {"access-keys", "create", "create-access-key", {}},
      {"access-keys", "list", "list-access-keys", {}},
      {"access-keys", "disable", "update-access-key", {{"status", "ACCESS_KEY_STATUS_INACTIVE"}}},
      {"access-keys", "enable", "update-access-key", {{"status", "ACCESS_KEY_STATUS_ACTIVE"}}},
      {"access-keys", "delete", "delete-access-key", {}},
  };
  return *kShortForms;
}

const ShortForm* FindShortForm(absl::string_view group, absl::string_view name) {
  for (const ShortForm& form : ShortForms()) {
    if (form.group == group && form.name == name) return &form;
  }
  return nullptr;
}

std::vector<const ShortForm*> ShortFormsOf(absl::string_view group) {
  std::vector<const ShortForm*> out;
  for (const ShortForm& form : ShortForms()) {
    if (form.group == group) out.push_back(&form);
  }
  return out;
}

std::string ShortFormExpansion(const ShortForm& form) {
  std::string out = form.operation;
  for (const Preset& preset : form.presets) {
    absl::StrAppend(&out, " --", FlagName(preset.field), "=", preset.value);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<pb::Message>> BuildOperationRequest(
    const pb::MethodDescriptor& method, const std::vector<std::string>& args, const ShortForm* form,
    const FileReader& read_file) {
  const pb::Descriptor& type = *method.input_type();
  if (form != nullptr) {
    // Refused before anything is read: which value would win is not the
    // user's guess to make.
    COFFER_ASSIGN_OR_RETURN(std::set<std::string> named, FieldsNamedByFlags(type, args));
    for (const Preset& preset : form->presets) {
      if (named.count(preset.field) > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--", FlagName(preset.field), ": `", form->group, " ", form->name,
            "` sets it itself; use `", form->group, " ", form->operation, "` to choose it"));
      }
    }
  }
  COFFER_ASSIGN_OR_RETURN(std::unique_ptr<pb::Message> request,
                          BuildRequest(type, args, read_file));
  if (form != nullptr) {
    std::vector<std::string> preset_args;
    for (const Preset& preset : form->presets) {
      const pb::FieldDescriptor* field = type.FindFieldByName(preset.field);
      if (field == nullptr) {
        return absl::InternalError(
            absl::StrCat(type.full_name(), " has no field '", preset.field, "'"));
      }
      if (IsSet(*request, *field)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--cli-input-json: sets ", preset.field, ", which `", form->group, " ", form->name,
            "` sets itself; use `", form->group, " ", form->operation, "` to choose it"));
      }
      preset_args.push_back(absl::StrCat("--", FlagName(preset.field), "=", preset.value));
    }
    COFFER_RETURN_IF_ERROR(FillRequest(preset_args, *request, read_file));
  }
  COFFER_RETURN_IF_ERROR(CheckRequired(*request, DocFor(method)));
  return request;
}

}  // namespace coffer::cofferctl
