# Installs Troupe into a scratch prefix, then builds and runs the embedding
# example against it with find_package(troupe), as a user of the installed
# package would.
#   cmake -DSOURCE_DIR=... -DBINARY_DIR=... -DWORK_DIR=... -P install_test.cmake
foreach(var SOURCE_DIR BINARY_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run("install" ${CMAKE_COMMAND} --install "${BINARY_DIR}" --prefix "${prefix}")
if(NOT EXISTS "${prefix}/lib/cmake/troupe/troupeConfig.cmake"
   AND NOT EXISTS "${prefix}/lib/x86_64-linux-gnu/cmake/troupe/troupeConfig.cmake")
  message(FATAL_ERROR "no troupeConfig.cmake under ${prefix}")
endif()
if(NOT EXISTS "${prefix}/include/troupe/protocol/plan.hpp")
  message(FATAL_ERROR "headers were not installed under ${prefix}/include")
endif()
run("configure" ${CMAKE_COMMAND} -S "${SOURCE_DIR}/examples/embedding"
    -B "${WORK_DIR}/build" "-DCMAKE_PREFIX_PATH=${prefix}"
    -DCMAKE_BUILD_TYPE=Release)
run("build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("run" "${WORK_DIR}/build/troupe_embedding")
if(NOT last_output MATCHES "reviewed by C\\+\\+ agent")
  message(FATAL_ERROR "unexpected output:\n${last_output}")
endif()
message(STATUS "installed package works:\n${last_output}")
file(REMOVE_RECURSE "${WORK_DIR}")
