"""lipsync-bot: the Magic Hour Lip Sync API in Discord servers, with credit quotas."""

__version__ = "0.1.0"
