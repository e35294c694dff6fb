"""The stored in-context example set (instruction -> plan) the planner retrieves from.

Written against the seeded primitives of the tabletop sim.  The benchmark's held-out
instructions (``benchmarks/bench_planner.py``) are deliberately different sentences:
new paraphrases and new compositions, never copies of these.  Bootstrapped composite skills
add their own examples at run time (:meth:`robolearn.planner.Planner.add_example`).
"""

from __future__ import annotations

from robolearn.planner.retrieval import Example

EXAMPLES: list[Example] = [Example(i, p) for i, p in [
    ("move the gripper above the green block", "reach(green_block); done"),
    ("hover above the bowl", "reach(bowl); done"),
    ("pick up the red block", "pick(red_block); done"),
    ("grab the blue block", "pick(blue_block); done"),
    ("lift the green block off the table", "pick(green_block); done"),
    ("put the red block on the target pad", "pick(red_block); place(red_block, pad); done"),
    ("place the green block into the bowl", "pick(green_block); place(green_block, bowl); done"),
    ("move the blue block to the bowl", "pick(blue_block); place(blue_block, bowl); done"),
    ("take the red block and drop it in the bowl",
     "pick(red_block); place(red_block, bowl); done"),
    ("push the green block onto the target pad", "push(green_block, pad); done"),
    ("slide the red block onto the target pad", "push(red_block, pad); done"),
    ("open the drawer", "open_drawer(); done"),
    ("pull the drawer open", "open_drawer(); done"),
    ("close the drawer", "close_drawer(); done"),
    ("push the drawer shut", "close_drawer(); done"),
    ("put the green block in the bowl, then close the drawer",
     "pick(green_block); place(green_block, bowl); close_drawer(); done"),
    ("put the blue block in the bowl and the red block on the target pad",
     "pick(blue_block); place(blue_block, bowl); pick(red_block); place(red_block, pad); done"),
    ("open the drawer, push the red block onto the target pad and put the green block in "
     "the bowl", "open_drawer(); push(red_block, pad); pick(green_block); "
                 "place(green_block, bowl); done"),
    ("first open the drawer, then pick up the blue block", "open_drawer(); pick(blue_block); done"),
    ("close the drawer and then push the blue block onto the target pad",
     "close_drawer(); push(blue_block, pad); done"),
]]
