"""Recovery layer of STViT-R, paper Sec. 3.3."""
from .blocks import CrossBlock


class RecoveryBlock(CrossBlock):
    """Restore full-resolution image tokens from the semantic tokens.

    Queries are the image tokens saved before generation, keys/values the
    semantic tokens; the attention residual is on the image tokens, so the
    output has the saved tokens' shape. Same arguments as :class:`CrossBlock`
    except ``shortcut``, which recovery always needs.
    """

    def __init__(self, *args, **kwargs) -> None:
        if not kwargs.pop('shortcut', True):
            raise ValueError('RecoveryBlock: the residual on image tokens cannot be disabled')
        super().__init__(*args, shortcut=True, **kwargs)
