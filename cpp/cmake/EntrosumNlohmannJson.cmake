# Find nlohmann-json 3.11 or newer (before 4), the JSON parser of saved models' metadata
# (entrosum/io/model_io.hpp), and provide the target nlohmann_json::nlohmann_json. Included by the build
# (CMakeLists.txt) and by the installed package config, which installs this file beside itself, so that a
# consumer finds it the same ways, in this order:
#   1. a target nlohmann_json::nlohmann_json that the including project already defines;
#   2. a CMake package, find_package(nlohmann_json CONFIG): Debian's nlohmann-json3-dev, conda, vcpkg, or any
#      prefix on CMAKE_PREFIX_PATH (or nlohmann_json_DIR);
#   3. the directory ENTROSUM_NLOHMANN_JSON_INCLUDE_DIR, if set, holding nlohmann/json.hpp;
#   4. the nlohmann-json Python package (pip install nlohmann-json; a build requirement of the wheel, headers
#      only, no CMake files) of the Python interpreter CMake finds (-DPython_EXECUTABLE=... chooses it).
# The last two give an INTERFACE IMPORTED target made here.
#
# ENTROSUM_NLOHMANN_JSON_REQUIRED_VERSION, if set (the package config sets it to the version the library was
# compiled with), asks for exactly that version: nlohmann's inline namespace, and so the type of
# SavedModel::metadata, includes the version number.
#
# Sets ENTROSUM_NLOHMANN_JSON_FOUND, ENTROSUM_NLOHMANN_JSON_VERSION (empty when the target was given and its
# version is unknown) and, when not found, ENTROSUM_NLOHMANN_JSON_MESSAGE, which says how to provide it; the
# includer decides whether that is an error.

set(ENTROSUM_NLOHMANN_JSON_FOUND FALSE)
set(ENTROSUM_NLOHMANN_JSON_VERSION "")
set(ENTROSUM_NLOHMANN_JSON_MESSAGE "")
set(_entrosum_njson_problems "")

# _entrosum_njson_header_version(include_dir out): the version "major.minor.patch" of the nlohmann/json.hpp
# under include_dir (single-header or multi-header layout), or "" if it is not there.
function(_entrosum_njson_header_version include_dir out)
  set(version "")
  foreach(header IN ITEMS nlohmann/json.hpp nlohmann/detail/abi_macros.hpp)
    if(version STREQUAL "" AND EXISTS "${include_dir}/${header}")
      file(STRINGS "${include_dir}/${header}" lines REGEX "^#define NLOHMANN_JSON_VERSION_(MAJOR|MINOR|PATCH) +[0-9]+")
      set(parts "")
      foreach(part IN ITEMS MAJOR MINOR PATCH)
        foreach(line IN LISTS lines)
          if(line MATCHES "^#define NLOHMANN_JSON_VERSION_${part} +([0-9]+)")
            list(APPEND parts "${CMAKE_MATCH_1}")
            break()
          endif()
        endforeach()
      endforeach()
      list(LENGTH parts n_parts)
      if(n_parts EQUAL 3)
        string(REPLACE ";" "." version "${parts}")
      endif()
    endif()
  endforeach()
  set(${out} "${version}" PARENT_SCOPE)
endfunction()

# _entrosum_njson_acceptable(version out why): whether a version found is usable, and if not, why.
function(_entrosum_njson_acceptable version out why)
  if(ENTROSUM_NLOHMANN_JSON_REQUIRED_VERSION)
    if(version VERSION_EQUAL ENTROSUM_NLOHMANN_JSON_REQUIRED_VERSION)
      set(${out} TRUE PARENT_SCOPE)
    else()
      set(${out} FALSE PARENT_SCOPE)
      set(${why} "version ${version}, not ${ENTROSUM_NLOHMANN_JSON_REQUIRED_VERSION}" PARENT_SCOPE)
    endif()
  elseif(version VERSION_GREATER_EQUAL 3.11 AND version VERSION_LESS 4)
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
    set(${why} "version ${version}, not 3.11 or newer before 4" PARENT_SCOPE)
  endif()
endfunction()

# _entrosum_njson_use_headers(include_dir source): the headers under include_dir, if acceptable, as the target.
macro(_entrosum_njson_use_headers include_dir source)
  _entrosum_njson_header_version("${include_dir}" _entrosum_njson_version)
  if(_entrosum_njson_version STREQUAL "")
    list(APPEND _entrosum_njson_problems "${source}: no nlohmann/json.hpp with a version under ${include_dir}")
  else()
    _entrosum_njson_acceptable("${_entrosum_njson_version}" _entrosum_njson_ok _entrosum_njson_why)
    if(_entrosum_njson_ok)
      add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
      set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${include_dir}")
      set(ENTROSUM_NLOHMANN_JSON_FOUND TRUE)
      set(ENTROSUM_NLOHMANN_JSON_VERSION "${_entrosum_njson_version}")
    else()
      list(APPEND _entrosum_njson_problems "${source} (${include_dir}): ${_entrosum_njson_why}")
    endif()
  endif()
endmacro()

# 1. A target the including project provides (its own FetchContent or add_subdirectory of nlohmann-json).
if(TARGET nlohmann_json::nlohmann_json)
  set(ENTROSUM_NLOHMANN_JSON_FOUND TRUE)
  if(DEFINED nlohmann_json_VERSION)
    set(ENTROSUM_NLOHMANN_JSON_VERSION "${nlohmann_json_VERSION}")
  endif()
endif()

# 2. A CMake package.
if(NOT ENTROSUM_NLOHMANN_JSON_FOUND)
  if(ENTROSUM_NLOHMANN_JSON_REQUIRED_VERSION)
    find_package(nlohmann_json ${ENTROSUM_NLOHMANN_JSON_REQUIRED_VERSION} EXACT CONFIG QUIET)
  else()
    find_package(nlohmann_json 3.11 CONFIG QUIET)  # its version file accepts 3.x from 3.11 on
  endif()
  if(nlohmann_json_FOUND AND TARGET nlohmann_json::nlohmann_json)
    set(ENTROSUM_NLOHMANN_JSON_FOUND TRUE)
    set(ENTROSUM_NLOHMANN_JSON_VERSION "${nlohmann_json_VERSION}")
  elseif(nlohmann_json_CONSIDERED_VERSIONS)
    list(APPEND _entrosum_njson_problems
      "CMake package nlohmann_json: found version(s) ${nlohmann_json_CONSIDERED_VERSIONS} (${nlohmann_json_CONSIDERED_CONFIGS}), none acceptable")
  endif()
endif()

# 3. A directory given by the user.
if(NOT ENTROSUM_NLOHMANN_JSON_FOUND AND ENTROSUM_NLOHMANN_JSON_INCLUDE_DIR)
  _entrosum_njson_use_headers("${ENTROSUM_NLOHMANN_JSON_INCLUDE_DIR}" "ENTROSUM_NLOHMANN_JSON_INCLUDE_DIR")
endif()

# 4. The Python package.
if(NOT ENTROSUM_NLOHMANN_JSON_FOUND)
  if(NOT Python_EXECUTABLE)
    find_package(Python COMPONENTS Interpreter QUIET)
  endif()
  if(Python_EXECUTABLE)
    execute_process(
      COMMAND "${Python_EXECUTABLE}" -c "import nlohmann_json; print(nlohmann_json.get_include())"
      OUTPUT_VARIABLE _entrosum_njson_pip_include
      ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _entrosum_njson_pip_result)
    if(_entrosum_njson_pip_result EQUAL 0 AND IS_DIRECTORY "${_entrosum_njson_pip_include}")
      file(TO_CMAKE_PATH "${_entrosum_njson_pip_include}" _entrosum_njson_pip_include)
      _entrosum_njson_use_headers("${_entrosum_njson_pip_include}" "the nlohmann-json package of ${Python_EXECUTABLE}")
    else()
      list(APPEND _entrosum_njson_problems "${Python_EXECUTABLE} has no nlohmann_json package")
    endif()
  else()
    list(APPEND _entrosum_njson_problems "no Python interpreter found to ask for the nlohmann-json package")
  endif()
endif()

if(NOT ENTROSUM_NLOHMANN_JSON_FOUND)
  if(ENTROSUM_NLOHMANN_JSON_REQUIRED_VERSION)
    set(_entrosum_njson_wanted "nlohmann-json ${ENTROSUM_NLOHMANN_JSON_REQUIRED_VERSION} (the version entrosum was built with)")
  else()
    set(_entrosum_njson_wanted "nlohmann-json 3.11 or newer (before 4)")
  endif()
  list(JOIN _entrosum_njson_problems "\n  " _entrosum_njson_problems)
  set(ENTROSUM_NLOHMANN_JSON_MESSAGE "entrosum needs ${_entrosum_njson_wanted}, the JSON parser of saved models' \
metadata, and did not find it. Provide it in one of these ways:
  - pip install nlohmann-json (in the environment of the Python that CMake finds, or pass -DPython_EXECUTABLE=...)
  - apt-get install nlohmann-json3-dev (Debian, Ubuntu), or any CMake package of it on CMAKE_PREFIX_PATH
    (or -Dnlohmann_json_DIR=...)
  - -DENTROSUM_NLOHMANN_JSON_INCLUDE_DIR=<directory holding nlohmann/json.hpp>
  - a target nlohmann_json::nlohmann_json defined before entrosum is added or found
What was tried:
  ${_entrosum_njson_problems}")
  unset(_entrosum_njson_wanted)
endif()
unset(_entrosum_njson_problems)
unset(_entrosum_njson_version)
unset(_entrosum_njson_ok)
unset(_entrosum_njson_why)
unset(_entrosum_njson_pip_include)
unset(_entrosum_njson_pip_result)
