// SPDX-License-Identifier: GPL-2.0-or-later
#include "commands.hpp"

int main(int argc, char** argv)
{
  return kmodsync::cli::main(argc, argv);
}
