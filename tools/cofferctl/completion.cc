#include "tools/cofferctl/completion.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/cofferctl/audit_command.h"
#include "tools/cofferctl/failures.h"
#include "tools/cofferctl/invocation.h"
#include "tools/cofferctl/request_builder.h"
#include "tools/cofferctl/short_forms.h"

namespace coffer::cofferctl {
namespace {

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

// cofferctl's own flags that take a value (invocation.h), for every
// operation; --max-events only makes sense for streams but is accepted
// before the operation is known.
constexpr char kGlobalFlags[] =
    "--address --ca --cert --key --authority --server-spiffe-id --timeout --output "
    "--output-file --output-field --max-events --help";

// One "case" arm per (group, operation): `key` is what the script matches,
// "<group> <operation>".
struct Arm {
  std::string key;
  std::string words;
};

std::string Case(absl::string_view var, const std::vector<Arm>& arms, absl::string_view fallback) {
  std::string out = absl::StrCat("  case \"", var, "\" in\n");
  for (const Arm& arm : arms) {
    absl::StrAppend(&out, "    \"", arm.key, "\") echo \"", arm.words, "\" ;;\n");
  }
  if (!fallback.empty()) absl::StrAppend(&out, "    *) ", fallback, " ;;\n");
  return out + "  esac\n";
}

std::string EnumWords(const pb::EnumDescriptor& type) {
  std::vector<std::string> names;
  for (int i = 0; i < type.value_count(); ++i) {
    if (type.value(i)->number() != 0) names.push_back(EnumShortName(*type.value(i)));
  }
  return absl::StrJoin(names, " ");
}

struct OperationArms {
  std::vector<Arm> flags;   // "kms encrypt" -> "--key-id --plaintext ..."
  std::vector<Arm> bools;   // "params put-parameter" -> "--overwrite"
  std::vector<Arm> values;  // "params put-parameter --type" -> "STRING ..."
};

// The arms of one operation under `key` ("kms encrypt", "watch params" for
// an alias, "access-keys disable" for a short form), without the fields in
// `omitted` (a short form's presets).
void AddOperation(const std::string& key, const pb::Descriptor& request, OperationArms* arms,
                  const std::set<std::string>& omitted = {}) {
  std::vector<std::string> flags;
  std::vector<std::string> bools;
  for (int i = 0; i < request.field_count(); ++i) {
    const FD& field = *request.field(i);
    if (omitted.count(field.name()) > 0) continue;
    const std::string flag = absl::StrCat("--", FlagName(field.name()));
    flags.push_back(flag);
    if (field.cpp_type() == FD::CPPTYPE_BOOL && !field.is_repeated()) {
      bools.push_back(flag);
      arms->values.push_back({absl::StrCat(key, " ", flag), "true false"});
    } else if (field.cpp_type() == FD::CPPTYPE_ENUM) {
      arms->values.push_back({absl::StrCat(key, " ", flag), EnumWords(*field.enum_type())});
    }
  }
  flags.push_back("--cli-input-json");
  arms->flags.push_back({key, absl::StrJoin(flags, " ")});
  if (!bools.empty()) arms->bools.push_back({key, absl::StrJoin(bools, " ")});
}

// The body of the script below the generated tables: the parts of the line
// so far, then what fits where the cursor is. COMP_WORDBREAKS splits
// "--flag=value" into "--flag" "=" "value", so "=" is looked for on both
// sides of the cursor.
constexpr char kMain[] = R"SH(
# Whether $3 (a flag) takes a value in operation "$1 $2".
_cofferctl_takes_value() {
  case "$3" in --help|-h) return 1 ;; esac
  local b
  for b in $(_cofferctl_bools "$1" "$2"); do
    [[ $b == "$3" ]] && return 1
  done
  return 0
}

_cofferctl() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local group="" op="" flag="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ $w == -* ]]; then
      if [[ ${COMP_WORDS[i+1]} == "=" ]]; then
        ((i += 2))
      elif [[ $w != *=* ]] && _cofferctl_takes_value "$group" "$op" "$w"; then
        ((i++))
      fi
      continue
    fi
    if [[ -z $group ]]; then group=$w; elif [[ -z $op ]]; then op=$w; fi
  done

  if [[ $cur == "=" ]]; then
    flag=$prev; cur=""
  elif [[ $prev == "=" ]]; then
    flag=${COMP_WORDS[COMP_CWORD-2]}
  elif [[ $prev == -* && $cur != -* ]] && _cofferctl_takes_value "$group" "$op" "$prev"; then
    flag=$prev
  fi
  if [[ -n $flag ]]; then
    case "$flag" in
      --output) COMPREPLY=($(compgen -W "json table text" -- "$cur")) ;;
      --ca|--cert|--key|--output-file|--*-file) COMPREPLY=($(compgen -f -- "$cur")) ;;
      *) COMPREPLY=($(compgen -W "$(_cofferctl_values "$group $op $flag")" -- "$cur")) ;;
    esac
    return 0
  fi

  if [[ $cur == -* ]]; then
    local own=""
    [[ -n $op ]] && own=$(_cofferctl_flags "$group $op")
    COMPREPLY=($(compgen -W "$own $_cofferctl_global_flags" -- "$cur"))
  elif [[ -z $group ]]; then
    COMPREPLY=($(compgen -W "$_cofferctl_groups" -- "$cur"))
  elif [[ -z $op ]]; then
    COMPREPLY=($(compgen -W "$(_cofferctl_operations "$group")" -- "$cur"))
  elif [[ $group == audit ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
  return 0
}

complete -o default -F _cofferctl cofferctl
)SH";

}  // namespace

std::string BashCompletion(const CommandTable& table) {
  std::vector<std::string> groups;
  std::vector<Arm> operations;
  OperationArms arms;
  for (const Group& group : table.groups()) {
    groups.push_back(group.spec.name);
    std::vector<std::string> names;
    for (int i = 0; i < group.service->method_count(); ++i) {
      const pb::MethodDescriptor& method = *group.service->method(i);
      if (method.client_streaming()) continue;  // cofferctl cannot call it
      const std::string op = OperationName(method.name());
      names.push_back(op);
      AddOperation(absl::StrCat(group.spec.name, " ", op), *method.input_type(), &arms);
    }
    for (const ShortForm* form : ShortFormsOf(group.spec.name)) {
      const pb::MethodDescriptor* method = CommandTable::FindOperation(group, form->operation);
      if (method == nullptr) continue;
      names.push_back(form->name);
      std::set<std::string> presets;
      for (const Preset& preset : form->presets) presets.insert(preset.field);
      AddOperation(absl::StrCat(group.spec.name, " ", form->name), *method->input_type(), &arms,
                   presets);
    }
    operations.push_back({group.spec.name, absl::StrJoin(names, " ")});
  }
  std::vector<std::string> targets;
  for (const WatchAlias& alias : WatchAliases()) {
    const Group* group = table.FindGroup(alias.group);
    if (group == nullptr) continue;
    targets.push_back(alias.target);
    const pb::MethodDescriptor* method = CommandTable::FindOperation(*group, alias.operation);
    if (method != nullptr) {
      AddOperation(absl::StrCat(kWatchGroup, " ", alias.target), *method->input_type(), &arms);
    }
  }
  if (!targets.empty()) {
    groups.push_back(kWatchGroup);
    operations.push_back({kWatchGroup, absl::StrJoin(targets, " ")});
  }
  groups.insert(groups.end(), {kAuditGroup, kCompletionGroup, "help"});
  operations.push_back({kAuditGroup, "verify"});
  operations.push_back({kCompletionGroup, "bash"});

  return absl::StrCat(
      "# bash completion for cofferctl, made by `cofferctl completion bash` from the\n"
      "# operations this binary knows (make it again after an upgrade). Install:\n"
      "#   source <(cofferctl completion bash)       # in ~/.bashrc\n"
      "#   cofferctl completion bash > ~/.local/share/bash-completion/completions/cofferctl\n\n",
      "_cofferctl_groups=\"", absl::StrJoin(groups, " "), "\"\n", "_cofferctl_global_flags=\"",
      kGlobalFlags, "\"\n\n", "_cofferctl_operations() {\n", Case("$1", operations, ""), "}\n\n",
      "_cofferctl_flags() {\n", Case("$1", arms.flags, ""), "}\n\n", "_cofferctl_bools() {\n",
      Case("$1 $2", arms.bools, ""), "}\n\n", "_cofferctl_values() {\n",
      Case("$1", arms.values, ""), "}\n", kMain);
}

std::string CompletionUsage() {
  return "Usage: cofferctl completion bash\n\n"
         "Prints a bash completion script: groups, operations, the flags of each\n"
         "operation, enum values, --output formats and file names. Install it with\n"
         "  source <(cofferctl completion bash)       # in ~/.bashrc\n"
         "or, with the bash-completion package,\n"
         "  cofferctl completion bash > ~/.local/share/bash-completion/completions/cofferctl\n";
}

int RunCompletion(const CommandTable& table, const std::vector<std::string>& args,
                  std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    out << CompletionUsage();
    return kExitOk;
  }
  if (args.size() != 1 || args[0] != "bash") {
    err << FormatLocalError(kUsageReason, "completion: only `cofferctl completion bash` exists")
        << "\n";
    return kExitUsage;
  }
  out << BashCompletion(table);
  return kExitOk;
}

}  // namespace coffer::cofferctl
