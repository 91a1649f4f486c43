#include "services/store/params/params_service.h"

#include "libs/rpc/unary.h"

namespace coffer::store {
namespace pm = ::coffer::params::v1;

namespace {
void WipeParameter(const pm::Parameter& p) {
  if (p.type() == pm::PARAMETER_TYPE_SECURE_STRING) rpc::WipeString(p.value());
}
}  // namespace

#define COFFER_PARAMS_HANDLER(Method, wipe)                                                        \
  grpc::ServerUnaryReactor* ParamsService::Method(grpc::CallbackServerContext* context,            \
                                                  const pm::Method##Request* request,              \
                                                  pm::Method##Response* response) {                \
    return gate_->Unary<pm::Method##Response>(                                                     \
        context, "ssm:" #Method,                                                                   \
        [this, request](const authz::Access& access) { return store_->Method(*request, access); }, \
        response, wipe);                                                                           \
  }

COFFER_PARAMS_HANDLER(PutParameter, [request] { rpc::WipeString(request->value()); })
COFFER_PARAMS_HANDLER(GetParameter, [response] { WipeParameter(response->parameter()); })
COFFER_PARAMS_HANDLER(GetParameters, [response] {
  for (const auto& p : response->parameters()) WipeParameter(p);
})
COFFER_PARAMS_HANDLER(GetParametersByPath, [response] {
  for (const auto& p : response->parameters()) WipeParameter(p);
})
COFFER_PARAMS_HANDLER(DescribeParameters, nullptr)
COFFER_PARAMS_HANDLER(GetParameterHistory, [response] {
  for (const auto& p : response->parameters()) {
    if (p.type() == pm::PARAMETER_TYPE_SECURE_STRING) rpc::WipeString(p.value());
  }
})
COFFER_PARAMS_HANDLER(DeleteParameter, nullptr)
COFFER_PARAMS_HANDLER(DeleteParameters, nullptr)
COFFER_PARAMS_HANDLER(LabelParameterVersion, nullptr)
COFFER_PARAMS_HANDLER(UnlabelParameterVersion, nullptr)
COFFER_PARAMS_HANDLER(AddTagsToResource, nullptr)
COFFER_PARAMS_HANDLER(RemoveTagsFromResource, nullptr)
COFFER_PARAMS_HANDLER(ListTagsForResource, nullptr)

#undef COFFER_PARAMS_HANDLER

grpc::ServerWriteReactor<coffer::v1::ChangeEvent>* ParamsService::WatchParameters(
    grpc::CallbackServerContext* context, const pm::WatchParametersRequest* request) {
  return WatchReactor::Start(
      *gate_, *context, "ssm:WatchParameters", changes_, watches_, request->start_after(),
      [request](const authz::Access& access) { return ParamStore::WatchFilter(*request, access); });
}

}  // namespace coffer::store
