"""canvasapi (PyPI) against the simulator, as a university's scripts use it.

Walks accounts, courses, sections, enrollments (every state filter), users (also through
the search_users route canvasapi's Course.get_users calls), modules and items (create, edit,
delete), assignments and submissions; checks that keys Canvas leaves out unless include[]
asks are left out (not null) and that keys Canvas always sends are there.
Usage: canvasapi_walk.py BASE_URL TOKEN. Prints "ok" when every check passed.
"""
import sys

from canvasapi import Canvas

base, token = sys.argv[1:3]
canvas = Canvas(base, token)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


accounts = list(canvas.get_accounts())
check(accounts, "accounts")
root = accounts[0]
subs = list(root.get_subaccounts(recursive=True))
check(subs, "sub-accounts")
courses = list(root.get_courses())
check(len(courses) >= 10, "courses")
users = list(root.get_users())
check(users, "account users")

course = None
for c in courses:
    full = canvas.get_course(c.id)
    if list(full.get_enrollments(type=["StudentEnrollment"])):
        course = full
        break
check(course is not None, "a course with students")
# Keys Canvas sends only when include[] asks for them.
raw = course._requester.request("GET", "courses/{}".format(course.id)).json()
for absent in ("syllabus_body", "total_students", "term", "teachers", "public_description"):
    check(absent not in raw, "course has {} without include[]".format(absent))
raw = course._requester.request(
    "GET", "courses/{}".format(course.id), _kwargs=[("include[]", "total_students")]
).json()
check(isinstance(raw.get("total_students"), int), "include[]=total_students")

sections = list(course.get_sections())
check(sections, "sections")
section = canvas.get_section(sections[0].id)
list(section.get_enrollments())

ALL = ["active", "invited", "creation_pending", "deleted", "rejected", "completed", "inactive"]
for state in ALL:
    got = {e.enrollment_state for e in course.get_enrollments(state=[state])}
    check(got <= {state}, "state={} gave {}".format(state, got))
# The current_and_* filters are a user's view of their own enrollments.
someone = None
for c in courses:
    for e in canvas.get_course(c.id).get_enrollments(state=["completed"]):
        someone = canvas.get_user(e.user_id)
        break
    if someone is not None:
        break
check(someone is not None, "a completed enrollment")
mine = {}
for state in ALL + ["current_and_invited", "current_and_future", "current_and_concluded"]:
    mine[state] = {e.id for e in someone.get_enrollments(state=[state])}
check(
    mine["current_and_concluded"] == mine["active"] | mine["completed"],
    "current_and_concluded means active or completed",
)
check(mine["current_and_concluded"] >= mine["completed"] and mine["completed"], "completed ones")
check(mine["current_and_invited"] == mine["active"] | mine["invited"], "current_and_invited")
students = list(course.get_enrollments(type=["StudentEnrollment"], state=["active"]))
check(students, "active students")
e = students[0]
check(hasattr(e, "grades") and isinstance(e.grades, dict), "student enrollments carry grades")

course_users = list(course.get_users(enrollment_type=["student"]))
check(course_users, "users through courses/:id/search_users")
found = list(course.get_users(search_term=course_users[0].name[:4]))
check(any(u.id == course_users[0].id for u in found), "search_term finds the user")
user = canvas.get_user(course_users[0].id)
list(user.get_enrollments())
for absent in ("email", "bio", "last_login"):
    check(absent not in user.__dict__ or getattr(user, absent) is not None,
          "user.{} sent as null".format(absent))

module = course.create_module(module={"name": "canvasapi check"})
check(module.name == "canvasapi check", "module created")
item = module.create_module_item(
    module_item={"type": "ExternalUrl", "external_url": "https://example.edu/x", "title": "X"}
)
item = item.edit(module_item={"title": "Y"})
check(item.title == "Y", "item edited")
check(any(i.id == item.id for i in module.get_module_items()), "item listed")
item.delete()
check(not any(i.id == item.id for i in module.get_module_items()), "item deleted")
module = module.edit(module={"name": "canvasapi check (edited)"})
check(module.name.endswith("(edited)"), "module edited")
module.delete()
check(not any(m.id == module.id for m in course.get_modules()), "module deleted")
list(course.get_modules())

assignments = list(course.get_assignments())
check(assignments, "assignments")
a = course.get_assignment(assignments[0].id)
subs = list(a.get_submissions())
for s in subs:
    check(hasattr(s, "entered_grade") and hasattr(s, "entered_score"),
          "submissions carry entered_grade and entered_score")
list(course.get_multiple_submissions(student_ids=["all"]))
print("ok")
