# Find Eigen 3.4: first the cmeel-eigen Python package (a build requirement of the wheel), whose
# Eigen3Config.cmake lies under site-packages/cmeel.prefix where CMake does not look by itself;
# then any system Eigen.
if(NOT TARGET Eigen3::Eigen)
  find_package(Python COMPONENTS Interpreter QUIET)
  if(Python_Interpreter_FOUND)
    execute_process(
      COMMAND ${Python_EXECUTABLE} -m cmeel cmake
      OUTPUT_VARIABLE ENTROSUM_CMEEL_PREFIX
      ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _cmeel_result)
    # One prefix per environment that has cmeel packages (a virtual environment with the system's site-packages
    # prints two), joined by ':'; the first is the interpreter's own.
    if(_cmeel_result EQUAL 0)
      string(REPLACE ":" ";" _cmeel_prefixes "${ENTROSUM_CMEEL_PREFIX}")
      foreach(_cmeel_prefix IN LISTS _cmeel_prefixes)
        if(EXISTS "${_cmeel_prefix}")
          list(APPEND CMAKE_PREFIX_PATH "${_cmeel_prefix}")
        endif()
      endforeach()
    endif()
  endif()
  find_package(Eigen3 3.4 CONFIG REQUIRED)
endif()
