"""Selection and semi-supervised methods beyond Co-teaching and DivideMix: each file registers one."""
from methods.selection import coteaching_plus, disc, elr_plus, jocor, sed  # noqa: F401
