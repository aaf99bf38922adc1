# Writes OUT, a C++ file defining troupe::detail::builtin_personas(): the
# persona prompts of runtime/personas/*.md, by file name, compiled in so a
# `troupe` binary needs no data files. Editing or adding a prompt file
# makes CMake write OUT again.
function(troupe_embed_personas dir out)
  file(GLOB files CONFIGURE_DEPENDS "${dir}/*.md")
  list(SORT files)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${files})
  set(text "// Written by cmake/EmbedPersonas.cmake from runtime/personas/*.md.\n")
  string(APPEND text "#include <map>\n#include <string>\n\n")
  string(APPEND text "namespace troupe::detail {\n\n")
  string(APPEND text "const std::map<std::string, std::string>& builtin_personas() {\n")
  string(APPEND text "  static const std::map<std::string, std::string> personas{\n")
  foreach(f IN LISTS files)
    get_filename_component(name "${f}" NAME_WE)
    file(READ "${f}" hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
    string(APPEND text "    {\"${name}\", \"${escaped}\"},\n")
  endforeach()
  string(APPEND text "  };\n  return personas;\n}\n\n} // namespace troupe::detail\n")
  # Written only when it changes, so a new configure rebuilds nothing.
  file(CONFIGURE OUTPUT "${out}" CONTENT "${text}" @ONLY)
endfunction()
