from .group_hungarian_assigner import GroupHungarianAssigner
from .group_matching import solve_grouped_assignment

__all__ = ['GroupHungarianAssigner', 'solve_grouped_assignment']
