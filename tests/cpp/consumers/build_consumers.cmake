# Builds and runs the two downstream projects against this tree: one finds the installed package,
# one adds the source tree as a subdirectory. Run by ctest with cmake -P.
cmake_minimum_required(VERSION 3.20)

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

set(flags "")
if(SANITIZE)
  set(flags "-fsanitize=${SANITIZE}")
endif()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --config ${CONFIG})

foreach(kind IN ITEMS find_package add_subdirectory)
  set(build ${WORK_DIR}/${kind})
  run(${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/${kind} -B ${build} -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=${CONFIG} -DCMAKE_PREFIX_PATH=${prefix} -DFOXML_EVENTS_SOURCE_DIR=${SOURCE_DIR}
    "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_EXE_LINKER_FLAGS=${flags}")
  run(${CMAKE_COMMAND} --build ${build})
  run(${build}/trainer ${WORK_DIR}/${kind}-events.jsonl)
endforeach()
