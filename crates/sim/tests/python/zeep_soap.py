"""zeep (PyPI) against the simulated Panopto SOAP services, starting from their WSDL URLs.

Calls GetSessionsList, GetSessionsById, GetFoldersByExternalId (SessionManagement),
ListRecorders (RemoteRecorderManagement), GetUserByKey, CreateExternalGroup,
AddMembersToExternalGroup, GetGroupsByName, GetUsersInGroup (UserManagement) and
GrantGroupViewerAccessToSession, GetSessionAccessDetails (AccessManagement), reading every
answer through the served schemas. Usage: zeep_soap.py BASE USER PASSWORD FOLDER_EXTERNAL_ID
USER_KEY. Prints "ok".
"""
import sys

from zeep import Client

base, user, password, folder_external_id, user_key = sys.argv[1:6]
auth = {"UserKey": user, "Password": password}


def client(service, form):
    return Client("{}/Panopto/PublicAPI/4.6/{}.svc?{}".format(base, service, form))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


sessions = client("SessionManagement", "singleWsdl").service
listed = sessions.GetSessionsList(
    auth=auth,
    request={"Pagination": {"MaxNumberResults": 10, "PageNumber": 0}, "SortBy": "Date"},
    searchQuery=None,
)
check(listed.TotalNumberResults >= 1, "sessions listed")
first = listed.Results.Session[0]
check(first.State in ("Scheduled", "Recording", "Processing", "Complete"), first.State)
by_id = sessions.GetSessionsById(auth=auth, sessionIds={"guid": [first.Id]})
check(by_id[0].Id == first.Id, "session by id")  # zeep flattens a lone array result
folders = sessions.GetFoldersByExternalId(
    auth=auth, folderExternalIds={"string": [folder_external_id]}
)
check(folders[0].ExternalId == folder_external_id, "folder by external id")

recorders = client("RemoteRecorderManagement", "wsdl").service.ListRecorders(
    auth=auth, pagination={"MaxNumberResults": 5, "PageNumber": 0}, sortBy="Name"
)
check(recorders.TotalResultCount >= 1, "recorders")
check(recorders.PagedResults.RemoteRecorder[0].ExternalId, "a recorder's room")

users = client("UserManagement", "singleWsdl").service
me = users.GetUserByKey(auth=auth, userKey=user_key)
check(me.UserKey == user_key, "user by key")
group = users.CreateExternalGroup(
    auth=auth,
    groupName="zeep check",
    externalProvider="canvas-sim",
    externalId="zeep:1",
    memberIds={"guid": []},
)
check(group.GroupType == "External", "external group")
users.AddMembersToExternalGroup(
    auth=auth,
    externalProviderName="canvas-sim",
    externalGroupId="zeep:1",
    memberIds={"guid": [me.UserId]},
)
found = users.GetGroupsByName(auth=auth, groupName="zeep check")
check(found[0].Id == group.Id, "group by name")
members = users.GetUsersInGroup(auth=auth, groupId=group.Id)
check(list(members) == [me.UserId], "members")

access = client("AccessManagement", "singleWsdl").service
access.GrantGroupViewerAccessToSession(auth=auth, sessionId=first.Id, groupId=group.Id)
details = access.GetSessionAccessDetails(auth=auth, sessionId=first.Id)
check(list(details.GroupsWithDirectViewerAccess.guid) == [group.Id], "granted")
check(details.InheritViewerAccess is True, "inherits")
print("ok")
