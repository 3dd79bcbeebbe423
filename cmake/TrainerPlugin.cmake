# trainer_add_plugin(<name> SOURCES <files...> [LIBRARIES <libs...>])
# Builds one plugin as a MODULE library named trainer_plugin_<name>.so, linked against the
# shared core (one copy of the core per process), with only the descriptor exported.
function(trainer_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  set(target trainer_plugin_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(TARGET Trainer::trainer)
    target_link_libraries(${target} PRIVATE Trainer::trainer ${ARG_LIBRARIES})
  else()
    target_link_libraries(${target} PRIVATE trainer ${ARG_LIBRARIES})
    target_compile_options(${target} PRIVATE ${TRAINER_WARNINGS})
    set_target_properties(${target} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY "${TRAINER_PLUGIN_OUTPUT_DIR}"
      BUILD_RPATH "$ORIGIN/../.."
      INSTALL_RPATH "$ORIGIN/../..")
    install(TARGETS ${target} LIBRARY DESTINATION "${TRAINER_PLUGIN_INSTALL_DIR}")
  endif()
endfunction()
