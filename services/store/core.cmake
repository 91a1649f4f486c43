coffer_cc_library(
  NAME store_core
  SRCS ${CMAKE_CURRENT_LIST_DIR}/secret_store.cc
  HDRS ${CMAKE_CURRENT_LIST_DIR}/secret_store.h
  DEPS coffer::store_rules coffer::store_envelope coffer::store_list coffer::storage
       coffer::crypto coffer::common coffer::proto protobuf::libprotobuf)
