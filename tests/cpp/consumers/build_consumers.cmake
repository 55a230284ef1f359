# Builds and runs the downstream projects against this tree: one finds the installed package, one
# adds the source tree as a subdirectory, one builds with a plain Makefile and pkg-config, and
# (with the ZeroMQ component built) one finds the package with COMPONENTS zmq. Run by ctest with
# cmake -P.
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

set(kinds find_package add_subdirectory)
if(ZMQ)
  list(APPEND kinds find_package_zmq)
endif()
foreach(kind IN LISTS kinds)
  set(build ${WORK_DIR}/${kind})
  run(${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/${kind} -B ${build} -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=${CONFIG} -DCMAKE_PREFIX_PATH=${prefix} -DFOXML_EVENTS_SOURCE_DIR=${SOURCE_DIR}
    "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_EXE_LINKER_FLAGS=${flags}")
  run(${CMAKE_COMMAND} --build ${build})
  if(kind STREQUAL "find_package_zmq")
    run(${build}/zmq_trainer ${WORK_DIR}/events.ipc)
  else()
    run(${build}/trainer ${WORK_DIR}/${kind}-events.jsonl)
  endif()
endforeach()

# A trainer built with make: everything it needs comes from `pkg-config --cflags --libs foxml-events`.
set(build ${WORK_DIR}/pkg_config)
file(MAKE_DIRECTORY ${build})
run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${prefix}/${LIBDIR}/pkgconfig
  make -C ${build} -f ${CMAKE_CURRENT_LIST_DIR}/pkg_config/Makefile
  SOURCE=${CMAKE_CURRENT_LIST_DIR}/trainer.cpp CXX=${CXX} "CXXFLAGS=${flags}" "LDFLAGS=${flags}")
run(${build}/trainer ${WORK_DIR}/pkg_config-events.jsonl)
