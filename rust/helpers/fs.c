// SPDX-License-Identifier: GPL-2.0

#include <linux/blkdev.h>
#include <linux/buffer_head.h>
#include <linux/bio.h>
#include <linux/fileattr.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/writeback.h>

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

/* Inodes come from the filesystem's slab cache, on the super block's LRU. */
struct inode *rust_helper_alloc_inode_sb(struct super_block *sb,
					 struct kmem_cache *cache, gfp_t gfp)
{
	return alloc_inode_sb(sb, cache, gfp);
}

/* Folios and their buffers (the write path). */

struct buffer_head *rust_helper_folio_buffers(struct folio *folio)
{
	return folio_buffers(folio);
}

void rust_helper_folio_get(struct folio *folio)
{
	folio_get(folio);
}

void rust_helper_folio_put(struct folio *folio)
{
	folio_put(folio);
}

loff_t rust_helper_folio_pos(struct folio *folio)
{
	return folio_pos(folio);
}

size_t rust_helper_folio_size(struct folio *folio)
{
	return folio_size(folio);
}

bool rust_helper_folio_test_writeback(struct folio *folio)
{
	return folio_test_writeback(folio);
}

bool rust_helper_folio_test_locked(struct folio *folio)
{
	return folio_test_locked(folio);
}

void rust_helper_folio_zero_segment(struct folio *folio, size_t start, size_t xend)
{
	folio_zero_segment(folio, start, xend);
}

bool rust_helper_bh_test_state(struct buffer_head *bh, unsigned int bit)
{
	return test_bit(bit, &bh->b_state);
}

void rust_helper_bh_set_state(struct buffer_head *bh, unsigned int bit)
{
	set_bit(bit, &bh->b_state);
}

void rust_helper_bh_clear_state(struct buffer_head *bh, unsigned int bit)
{
	clear_bit(bit, &bh->b_state);
}

bool rust_helper_bh_test_and_clear_state(struct buffer_head *bh, unsigned int bit)
{
	return test_and_clear_bit(bit, &bh->b_state);
}

void rust_helper_lock_buffer(struct buffer_head *bh)
{
	lock_buffer(bh);
}

int rust_helper_trylock_buffer(struct buffer_head *bh)
{
	return trylock_buffer(bh);
}

unsigned long rust_helper_bh_uptodate_lock_irqsave(struct buffer_head *bh)
{
	unsigned long flags;

	spin_lock_irqsave(&bh->b_uptodate_lock, flags);
	return flags;
}

void rust_helper_bh_uptodate_unlock_irqrestore(struct buffer_head *bh,
					       unsigned long flags)
{
	spin_unlock_irqrestore(&bh->b_uptodate_lock, flags);
}

/* Bios and writeback control. */

void rust_helper_bio_first_folio(struct folio_iter *fi, struct bio *bio, int i)
{
	bio_first_folio(fi, bio, i);
}

void rust_helper_bio_next_folio(struct folio_iter *fi, struct bio *bio)
{
	bio_next_folio(fi, bio);
}

blk_opf_t rust_helper_wbc_to_write_flags(struct writeback_control *wbc)
{
	return wbc_to_write_flags(wbc);
}

void rust_helper_mapping_set_error(struct address_space *mapping, int error)
{
	mapping_set_error(mapping, error);
}

struct folio *rust_helper_page_folio(struct page *page)
{
	return page_folio(page);
}

/* Inodes (the metadata write path). */

uid_t rust_helper_i_uid_read(const struct inode *inode)
{
	return i_uid_read(inode);
}

gid_t rust_helper_i_gid_read(const struct inode *inode)
{
	return i_gid_read(inode);
}

void rust_helper_mark_inode_dirty(struct inode *inode)
{
	mark_inode_dirty(inode);
}

void rust_helper_i_size_write(struct inode *inode, loff_t size)
{
	i_size_write(inode, size);
}

void rust_helper_filemap_invalidate_lock(struct address_space *mapping)
{
	filemap_invalidate_lock(mapping);
}

void rust_helper_filemap_invalidate_unlock(struct address_space *mapping)
{
	filemap_invalidate_unlock(mapping);
}

void rust_helper_filemap_invalidate_lock_shared(struct address_space *mapping)
{
	filemap_invalidate_lock_shared(mapping);
}

void rust_helper_filemap_invalidate_unlock_shared(struct address_space *mapping)
{
	filemap_invalidate_unlock_shared(mapping);
}

long rust_helper_atomic_long_read(const atomic_long_t *v)
{
	return atomic_long_read(v);
}

void rust_helper_sb_start_intwrite(struct super_block *sb)
{
	sb_start_intwrite(sb);
}

void rust_helper_sb_end_intwrite(struct super_block *sb)
{
	sb_end_intwrite(sb);
}

void rust_helper_sb_start_pagefault(struct super_block *sb)
{
	sb_start_pagefault(sb);
}

void rust_helper_sb_end_pagefault(struct super_block *sb)
{
	sb_end_pagefault(sb);
}

vm_fault_t rust_helper_vmf_fs_error(int err)
{
	return vmf_fs_error(err);
}

void rust_helper_get_bh(struct buffer_head *bh)
{
	get_bh(bh);
}

unsigned int rust_helper_memalloc_nofs_save(void)
{
	return memalloc_nofs_save();
}

void rust_helper_memalloc_nofs_restore(unsigned int flags)
{
	memalloc_nofs_restore(flags);
}

void rust_helper_inode_lock(struct inode *inode)
{
	inode_lock(inode);
}

void rust_helper_inode_unlock(struct inode *inode)
{
	inode_unlock(inode);
}

bool rust_helper_fileattr_has_fsx(const struct fileattr *fa)
{
	return fileattr_has_fsx(fa);
}

ssize_t rust_helper_generic_write_sync(struct kiocb *iocb, ssize_t count)
{
	return generic_write_sync(iocb, count);
}

unsigned int rust_helper_bdev_max_discard_sectors(struct block_device *bdev)
{
	return bdev_max_discard_sectors(bdev);
}

unsigned int rust_helper_bdev_discard_granularity(struct block_device *bdev)
{
	return bdev_discard_granularity(bdev);
}
