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
    if(_cmeel_result EQUAL 0 AND EXISTS "${ENTROSUM_CMEEL_PREFIX}")
      list(APPEND CMAKE_PREFIX_PATH "${ENTROSUM_CMEEL_PREFIX}")
    endif()
  endif()
  find_package(Eigen3 3.4 CONFIG REQUIRED)
endif()
