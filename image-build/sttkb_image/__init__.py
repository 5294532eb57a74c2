"""Turn a Raspberry Pi OS Lite arm64 image into a ready sttkb SD-card image without mounting anything.

The FAT boot partition is edited with mtools, the ext4 root with debugfs (both at a byte offset inside the image
file), so the build needs neither root, nor loop devices, nor a partition parser or vfat in the host kernel.
"""
