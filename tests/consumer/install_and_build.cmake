# cmake -P script run by the consumer:find_package test (see CMakeLists.txt for the variables it gets).
# Steps: install the kiln build tree into a fresh prefix; configure + build the consumer project against
# it; check that find_package found that prefix (not the source or build tree); run the program.
cmake_minimum_required(VERSION 3.25)

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/project-build)
file(REMOVE_RECURSE ${prefix} ${consumer_build})

function(run_step what)
  message(STATUS "consumer: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "consumer: '${what}' failed (exit status ${rc}); command: ${command}")
  endif()
endfunction()

set(config_args "")
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()

run_step("install ${KILN_BUILD_DIR} into ${prefix}"
  ${CMAKE_COMMAND} --install ${KILN_BUILD_DIR} --prefix ${prefix} ${config_args})

run_step("configure ${CONSUMER_SOURCE_DIR}"
  ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${consumer_build}
    -G ${GENERATOR} -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=${CONFIG}
    -DCMAKE_CXX_FLAGS=${CXX_FLAGS} -DCMAKE_EXE_LINKER_FLAGS=${CXX_FLAGS}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)

# find_package must have used the installed config, not some other kiln that happens to be findable.
file(STRINGS ${consumer_build}/CMakeCache.txt kiln_dir_line REGEX "^kiln_DIR:")
string(REGEX REPLACE "^kiln_DIR:[A-Z]+=" "" kiln_dir "${kiln_dir_line}")
cmake_path(IS_PREFIX prefix "${kiln_dir}" NORMALIZE found_in_prefix)
if(NOT found_in_prefix)
  message(FATAL_ERROR "consumer: expected find_package(kiln) to use the config installed under ${prefix}, "
                      "but it found kiln_DIR='${kiln_dir}'")
endif()

run_step("build" ${CMAKE_COMMAND} --build ${consumer_build} ${config_args})

if(EXISTS ${consumer_build}/${CONFIG}/kiln_consumer)   # multi-config generators put it in a subfolder
  set(app ${consumer_build}/${CONFIG}/kiln_consumer)
else()
  set(app ${consumer_build}/kiln_consumer)
endif()
run_step("run ${app}" ${app})
