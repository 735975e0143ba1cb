# Helpers that give every layer the same shape: one library per folder, one test binary per folder.

set(RVEC_SRC_ROOT ${PROJECT_SOURCE_DIR}/src)
# Tests read the data vendored in the repository (testdata/, see its README.md); RVEC_TEST_DATA
# overrides it at run time, e.g. with a directory of full sets from `rvec data pull`.
set(RVEC_TEST_DATA_DEFAULT ${PROJECT_SOURCE_DIR}/testdata)

function(rvec_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(RVEC_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

function(rvec_sanitize target)
  if(RVEC_SANITIZE)
    string(REPLACE ";" "," _san "${RVEC_SANITIZE}")
    # GCC's flow analysis under sanitizers reports false maybe-uninitialized warnings inside
    # libstdc++ (std::regex, std::function); they are not findings in our code.
    target_compile_options(${target} PRIVATE -fsanitize=${_san} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all -Wno-maybe-uninitialized)
    target_link_options(${target} PRIVATE -fsanitize=${_san})
  endif()
endfunction()

# rvec_library(NAME DEPS ...): library rvec_NAME from every .cc in this folder and its subfolders
# ("rooms", e.g. eval/tasks) except tests, fuzzers and benchmarks, so that parallel work on a layer
# never edits this file.
function(rvec_library name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  list(FILTER _srcs EXCLUDE REGEX "(_test|_fuzz|_bench)\\.cc$")
  if(NOT _srcs)
    # A layer whose first sources have not landed yet: still a target others can link.
    add_library(rvec_${name} INTERFACE)
    target_include_directories(rvec_${name} INTERFACE ${RVEC_SRC_ROOT})
    target_link_libraries(rvec_${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(rvec_${name} STATIC ${_srcs})
  target_include_directories(rvec_${name} PUBLIC ${RVEC_SRC_ROOT})
  target_link_libraries(rvec_${name} PUBLIC ${ARG_DEPS})
  rvec_warnings(rvec_${name})
  rvec_sanitize(rvec_${name})
endfunction()

# rvec_unit_tests(NAME DEPS ...): one test binary per folder from its *_test.cc files, label unit.
function(rvec_unit_tests name)
  if(NOT RVEC_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE _tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  if(NOT _tests)
    return()
  endif()
  add_executable(rvec_${name}_test ${_tests})
  target_link_libraries(rvec_${name}_test PRIVATE rvec_${name} ${ARG_DEPS} GTest::gtest
                                                  GTest::gmock GTest::gtest_main)
  target_compile_definitions(rvec_${name}_test PRIVATE
    RVEC_TEST_DATA_DEFAULT="${RVEC_TEST_DATA_DEFAULT}"
    RVEC_BINARY_DIR="${PROJECT_BINARY_DIR}")
  rvec_warnings(rvec_${name}_test)
  rvec_sanitize(rvec_${name}_test)
  gtest_discover_tests(rvec_${name}_test PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
endfunction()
