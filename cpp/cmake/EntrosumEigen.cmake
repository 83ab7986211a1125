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
    # a path list: one prefix per site-packages that holds cmeel packages (a venv and, with
    # --system-site-packages, its base interpreter's), joined by the platform's path separator
    if(_cmeel_result EQUAL 0)
      if(NOT WIN32)
        string(REPLACE ":" ";" ENTROSUM_CMEEL_PREFIX "${ENTROSUM_CMEEL_PREFIX}")
      endif()
      foreach(_prefix IN LISTS ENTROSUM_CMEEL_PREFIX)
        if(EXISTS "${_prefix}")
          list(APPEND CMAKE_PREFIX_PATH "${_prefix}")
        endif()
      endforeach()
    endif()
  endif()
  find_package(Eigen3 3.4 CONFIG REQUIRED)
endif()
