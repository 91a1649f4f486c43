// short_forms.h: short commands that stand for an operation of their group
// with some request fields preset, the way a user of `aws iam
// create-access-key` / `update-access-key --status Inactive` expects to type
// them:
//
//   cofferctl access-keys create --identity spiffe://coffer.local/app/catagram
//       == cofferctl access-keys create-access-key --identity ...
//   cofferctl access-keys disable --access-key-id AKCO...
//       == cofferctl access-keys update-access-key --access-key-id AKCO...
//                                                  --status=ACCESS_KEY_STATUS_INACTIVE
//
// One table (ShortForms()) says which exist; ParseInvocation (invocation.h)
// resolves a short form to its operation, and BuildOperationRequest below
// builds the request of every command line, short or not, so a short form
// runs exactly the code of its operation. A preset field cannot be given
// again: `disable --status=ACTIVE` is a usage error, not a silent choice.
//
//   const ShortForm* form = FindShortForm("access-keys", "disable");
//   absl::StatusOr<std::unique_ptr<google::protobuf::Message>> request =
//       BuildOperationRequest(*method, {"--access-key-id=AKCO..."}, form);
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "tools/cofferctl/request_builder.h"

namespace coffer::cofferctl {

// A request field a short form sets: `value` as a flag would give it.
struct Preset {
  std::string field;  // proto field name: "status"
  std::string value;  // "ACCESS_KEY_STATUS_INACTIVE"
};

// `cofferctl <group> <name>` stands for `cofferctl <group> <operation>` with
// `presets` set.
struct ShortForm {
  std::string group;      // "access-keys"
  std::string name;       // "disable"
  std::string operation;  // "update-access-key"
  std::vector<Preset> presets;
};

// Every short form, in the order usage texts list them. No name is also an
// operation of its group (cofferctl_test checks it).
const std::vector<ShortForm>& ShortForms();

// nullptr when `name` is no short form of `group`.
const ShortForm* FindShortForm(absl::string_view group, absl::string_view name);

// The short forms of `group`, in table order.
std::vector<const ShortForm*> ShortFormsOf(absl::string_view group);

// What the short form stands for, as a command after the group:
// "update-access-key --status=ACCESS_KEY_STATUS_INACTIVE".
std::string ShortFormExpansion(const ShortForm& form);

// The request cofferctl sends for `method` called with the request flags
// `args`, through `form` when it is not null: the flags (BuildRequest), then
// the presets, then the required fields of the method's OperationDoc
// (CheckRequired). INVALID_ARGUMENT naming the flag, never the value —
// also when `args` give a preset field, by a flag or in --cli-input-json.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> BuildOperationRequest(
    const google::protobuf::MethodDescriptor& method, const std::vector<std::string>& args,
    const ShortForm* form, const FileReader& read_file = ReadInput);

}  // namespace coffer::cofferctl
