# cmake -DCOMPILER=… -DFLAGS=… -DSOURCE=… -DDEFINE=… -DPATTERNS="re1;re2" -P expect_failure.cmake
# Passes when the compile fails and every pattern appears in the compiler's output (in any order: g++ and clang
# print the instantiation context and the message in different orders).
separate_arguments(flag_list UNIX_COMMAND "${FLAGS}")
execute_process(COMMAND ${COMPILER} -std=c++20 -fsyntax-only ${flag_list} -D${DEFINE} ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(APPEND out "${err}")
if(DEFINE STREQUAL "CASE_CONTROL")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the control case must compile:\n${out}")
  endif()
  return()
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "${DEFINE}: compiled, but must not")
endif()
foreach(p IN LISTS PATTERNS)
  if(NOT out MATCHES "${p}")
    message(FATAL_ERROR "${DEFINE}: the compiler's message lacks '${p}':\n${out}")
  endif()
endforeach()
message(STATUS "${DEFINE}: rejected with the expected message")
