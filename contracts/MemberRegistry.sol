// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Consortium membership: who may anchor records and where their nodes are.
/// @notice Administered by the consortium's administrator (the deployer, transferable).
contract MemberRegistry {
    enum Role { None, Headquarters, Partner, Auditor }

    struct Member {
        string name;
        Role role;
        string nodeUrl;
        // Integer microdegrees: no floats anywhere in what partners compare.
        int64 latE6;
        int64 lonE6;
        bool active;
        uint64 joinedAt;
    }

    address public admin;
    mapping(address => Member) private members;
    address[] private everAdded;

    event MemberAdded(address indexed account, string name, Role role, string nodeUrl, int64 latE6, int64 lonE6);
    event MemberRemoved(address indexed account);
    event NodeUrlChanged(address indexed account, string nodeUrl);
    event AdminTransferred(address indexed previous, address indexed next);

    modifier onlyAdmin() {
        require(msg.sender == admin, "only admin");
        _;
    }

    constructor() {
        admin = msg.sender;
        emit AdminTransferred(address(0), msg.sender);
    }

    function addMember(
        address account,
        string calldata name,
        Role role,
        string calldata nodeUrl,
        int64 latE6,
        int64 lonE6
    ) external onlyAdmin {
        require(account != address(0), "zero address");
        require(role != Role.None, "role required");
        require(bytes(name).length > 0, "name required");
        require(latE6 >= -90_000_000 && latE6 <= 90_000_000, "latitude out of range");
        require(lonE6 >= -180_000_000 && lonE6 <= 180_000_000, "longitude out of range");
        Member storage m = members[account];
        require(!m.active, "already a member");
        if (m.role == Role.None) {
            everAdded.push(account);
        }
        m.name = name;
        m.role = role;
        m.nodeUrl = nodeUrl;
        m.latE6 = latE6;
        m.lonE6 = lonE6;
        m.active = true;
        m.joinedAt = uint64(block.timestamp);
        emit MemberAdded(account, name, role, nodeUrl, latE6, lonE6);
    }

    /// @notice Keeps the record (history stays auditable); the account can no longer act as a member.
    function removeMember(address account) external onlyAdmin {
        require(members[account].active, "not a member");
        members[account].active = false;
        emit MemberRemoved(account);
    }

    /// @notice A member moves its own node (ports and hosts change; identity does not).
    function updateNodeUrl(string calldata nodeUrl) external {
        require(members[msg.sender].active, "not a member");
        members[msg.sender].nodeUrl = nodeUrl;
        emit NodeUrlChanged(msg.sender, nodeUrl);
    }

    function transferAdmin(address next) external onlyAdmin {
        require(next != address(0), "zero address");
        emit AdminTransferred(admin, next);
        admin = next;
    }

    function isMember(address account) external view returns (bool) {
        return members[account].active;
    }

    function getMember(address account) external view returns (Member memory) {
        return members[account];
    }

    function memberAddresses() external view returns (address[] memory) {
        return everAdded;
    }

    function memberCount() external view returns (uint256) {
        return everAdded.length;
    }
}
