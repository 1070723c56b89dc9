/* egrc run in a build without the Lua layer (cmake -DEGRC_LUA=OFF): recipes
 * are Lua, so there is nothing to run; say how to get a build that can. */
#include "cmd_run.h"

#include <stdio.h>

#include "base/error.h"

int egrc_cmd_run(int argc, char **argv) {
    fprintf(stderr, "egrc: run: this egrc was built without Lua (cmake -DEGRC_LUA=OFF), and recipes are Lua; "
                    "install liblua5.4-dev and libffi-dev and rebuild with -DEGRC_LUA=ON\n");
    return EGRC_EXIT_USAGE;
}
