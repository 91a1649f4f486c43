#include "services/store/params/params_service.h"

#include "libs/rpc/unary.h"

namespace coffer::store {
namespace pm = ::coffer::params::v1;

namespace {
void WipeParameter(const pm::Parameter& p) {
  if (p.type() == pm::PARAMETER_TYPE_SECURE_STRING) rpc::WipeString(p.value());
}
}  // namespace

#define COFFER_PARAMS_HANDLER(Method, wipe)                                           \
  grpc::ServerUnaryReactor* ParamsService::Method(grpc::CallbackServerContext*,       \
                                                  const pm::Method##Request* request, \
                                                  pm::Method##Response* response) {   \
    return rpc::FinishUnary(#Method, store_->Method(*request), response, wipe);       \
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
    grpc::CallbackServerContext*, const pm::WatchParametersRequest* request) {
  auto filter = ParamStore::WatchFilter(*request);
  if (!filter.ok()) return WatchReactor::Failed(filter.status());
  auto start = WatchReactor::StartPosition(*changes_, request->start_after());
  if (!start.ok()) return WatchReactor::Failed(start.status());
  return new WatchReactor(changes_, *start, std::move(filter).value(), watches_);
}

}  // namespace coffer::store
