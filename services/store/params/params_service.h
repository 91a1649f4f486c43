// params_service.h: the gRPC face of the parameters API in coffer-store.
//
// Thin: each unary handler calls the ParamStore method of the same name;
// WatchParameters streams the change log through a WatchReactor.
//
//   ParamsService service(&params, change_log.get(), &watches);
//   rpc::Server::Start(std::move(options), {&secrets_service, &service}, &health);
#pragma once

#include "coffer/params/v1/params.grpc.pb.h"
#include "libs/runtime/call_gate.h"
#include "services/store/changes/change_log.h"
#include "services/store/changes/watch_stream.h"
#include "services/store/params/param_store.h"

namespace coffer::store {

class ParamsService final : public params::v1::ParameterStore::CallbackService {
 public:
  // None is owned.
  // None is owned. Every call goes through `gate` (authorization, audit);
  // without one, every caller is trusted (in-process tests).
  ParamsService(ParamStore* store, ChangeLog* changes, WatchRegistry* watches,
                runtime::CallGate* gate = nullptr)
      : store_(store),
        changes_(changes),
        watches_(watches),
        gate_(gate != nullptr ? gate : &runtime::CallGate::Unguarded()) {}

#define COFFER_PARAMS_RPC(Method)                                              \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context,       \
                                   const params::v1::Method##Request* request, \
                                   params::v1::Method##Response* response) override;
  COFFER_PARAMS_RPC(PutParameter)
  COFFER_PARAMS_RPC(GetParameter)
  COFFER_PARAMS_RPC(GetParameters)
  COFFER_PARAMS_RPC(GetParametersByPath)
  COFFER_PARAMS_RPC(DescribeParameters)
  COFFER_PARAMS_RPC(GetParameterHistory)
  COFFER_PARAMS_RPC(DeleteParameter)
  COFFER_PARAMS_RPC(DeleteParameters)
  COFFER_PARAMS_RPC(LabelParameterVersion)
  COFFER_PARAMS_RPC(UnlabelParameterVersion)
  COFFER_PARAMS_RPC(AddTagsToResource)
  COFFER_PARAMS_RPC(RemoveTagsFromResource)
  COFFER_PARAMS_RPC(ListTagsForResource)
#undef COFFER_PARAMS_RPC

  grpc::ServerWriteReactor<coffer::v1::ChangeEvent>* WatchParameters(
      grpc::CallbackServerContext* context,
      const params::v1::WatchParametersRequest* request) override;

 private:
  ParamStore* store_;
  ChangeLog* changes_;
  WatchRegistry* watches_;
  runtime::CallGate* gate_;
};

}  // namespace coffer::store
