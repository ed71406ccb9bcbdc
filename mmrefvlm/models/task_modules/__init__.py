from .group_hungarian_assigner import GroupHungarianAssigner
from .group_matching import solve_grouped_assignment
from .in_order_assigner import InOrderAssigner

__all__ = ['GroupHungarianAssigner', 'InOrderAssigner', 'solve_grouped_assignment']
