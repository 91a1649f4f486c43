# One helper call per library, binary and test (in the manner of Abseil's
# absl_cc_library). Every include is written from the repository root
# ("libs/common/status_macros.h") or from the generated tree
# ("coffer/kms/v1/kms.grpc.pb.h").

set(COFFER_WARNINGS -Wall -Wextra -Wno-unused-parameter)

# coffer_cc_library(NAME common SRCS a.cc HDRS a.h DEPS absl::status)
# defines target coffer_<name> and its alias coffer::<name>.
function(coffer_cc_library)
  cmake_parse_arguments(CC "" "NAME" "SRCS;HDRS;DEPS" ${ARGN})
  if(CC_SRCS)
    add_library(coffer_${CC_NAME} STATIC ${CC_SRCS} ${CC_HDRS})
    target_include_directories(coffer_${CC_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(coffer_${CC_NAME} PUBLIC ${CC_DEPS})
    target_compile_options(coffer_${CC_NAME} PRIVATE ${COFFER_WARNINGS})
  else()
    add_library(coffer_${CC_NAME} INTERFACE)
    target_include_directories(coffer_${CC_NAME} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(coffer_${CC_NAME} INTERFACE ${CC_DEPS})
  endif()
  add_library(coffer::${CC_NAME} ALIAS coffer_${CC_NAME})
endfunction()

# coffer_cc_binary(NAME coffer-kms SRCS main.cc DEPS coffer::kms_core)
function(coffer_cc_binary)
  cmake_parse_arguments(CC "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${CC_NAME} ${CC_SRCS})
  target_link_libraries(${CC_NAME} PRIVATE ${CC_DEPS})
  target_compile_options(${CC_NAME} PRIVATE ${COFFER_WARNINGS})
endfunction()

# coffer_cc_test(NAME crypto_test SRCS x_test.cc DEPS coffer::crypto)
# One executable per library or service keeps link time down on small
# machines; every TEST inside is discovered as its own CTest case.
function(coffer_cc_test)
  cmake_parse_arguments(CC "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${CC_NAME} ${CC_SRCS})
  target_link_libraries(${CC_NAME} PRIVATE ${CC_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_options(${CC_NAME} PRIVATE ${COFFER_WARNINGS})
  if(NOT CC_LABELS)
    set(CC_LABELS unit)
  endif()
  gtest_discover_tests(${CC_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS ${CC_LABELS} TIMEOUT 300)
endfunction()
