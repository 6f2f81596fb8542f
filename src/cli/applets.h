/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef PARTMAP_APPLETS_H
#define PARTMAP_APPLETS_H

#ifndef PARTMAP_VERSION
#define PARTMAP_VERSION "0.1.0"
#endif

int kpartx_main(int argc, char **argv);
int dmsetup_main(int argc, char **argv);
int losetup_main(int argc, char **argv);
int image_main(int argc, char **argv);
int fuse_main_applet(int argc, char **argv);
int serve_main(int argc, char **argv);
int dmraid_main(int argc, char **argv);

#endif
