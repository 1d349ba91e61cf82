// SPDX-License-Identifier: GPL-2.0

#include <linux/blkdev.h>
#include <linux/buffer_head.h>
#include <linux/fs.h>

bool rust_helper_dir_emit(struct dir_context *ctx, const char *name, int namelen,
			  u64 ino, unsigned int type)
{
	return dir_emit(ctx, name, namelen, ino, type);
}

void rust_helper_map_bh(struct buffer_head *bh, struct super_block *sb,
			sector_t block)
{
	map_bh(bh, sb, block);
}

void rust_helper_i_uid_write(struct inode *inode, uid_t uid)
{
	i_uid_write(inode, uid);
}

void rust_helper_i_gid_write(struct inode *inode, gid_t gid)
{
	i_gid_write(inode, gid);
}

loff_t rust_helper_bdev_nr_bytes(struct block_device *bdev)
{
	return bdev_nr_bytes(bdev);
}
