"""The skill library: typed skill records, a versioned SQLite store, symbolic conditions.

Light to import (stdlib only); the sim is imported only by :func:`primitive_skills`.
"""

from robolearn.skills.seed import primitive_skills, seed_store
from robolearn.skills.store import (LibraryCorruptError, LibraryError, SkillStore, Version,
                                    salvage)
from robolearn.skills.types import Execution, Param, Provenance, Skill, SkillCall, SkillError

__all__ = ["Execution", "LibraryCorruptError", "LibraryError", "Param", "Provenance", "Skill",
           "SkillCall", "SkillError", "SkillStore", "Version", "primitive_skills", "salvage",
           "seed_store"]
