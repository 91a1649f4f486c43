coffer_cc_library(
  NAME store_service
  SRCS ${CMAKE_CURRENT_LIST_DIR}/secrets_service.cc ${CMAKE_CURRENT_LIST_DIR}/store_probe.cc
  HDRS ${CMAKE_CURRENT_LIST_DIR}/secrets_service.h ${CMAKE_CURRENT_LIST_DIR}/store_probe.h
  DEPS coffer::store_core coffer::rpc prometheus-cpp::core)

coffer_cc_binary(
  NAME coffer-store
  SRCS ${CMAKE_CURRENT_LIST_DIR}/main.cc
  DEPS coffer::store_service coffer::runtime absl::flags absl::flags_parse absl::flags_usage)
