// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

interface IMemberRegistry {
    function isMember(address account) external view returns (bool);
}

/// @title Rule book versions: proposed by a member, approved by the quorum the active version names,
///        active from a block onward.
/// @notice A version is the keccak-256 of its rule book's canonical JSON (docs/rules.md). The contract keeps
///         each version's governance (approvers, quorum, required approvers, activation delay) as its
///         proposer declared it; nodes check that it is what the rule book itself says before running it.
///         Versions form a chain: a proposal names the latest version as its parent, and only the latest
///         version's governance can approve it, so two proposals can never both activate on the same parent.
contract RuleRegistry {
    struct Governance {
        address[] approvers;
        uint16 quorum;
        address[] required;
        uint32 activationDelayBlocks;
    }

    struct Version {
        bytes32 parent;
        address proposer;
        uint64 proposedAtBlock;
        uint64 activatesAtBlock; // 0 until the quorum is reached
        string uri;
        address[] approvals;
        Governance governance;
    }

    IMemberRegistry public immutable members;
    mapping(bytes32 => Version) private versions;
    bytes32[] private proposed;
    bytes32[] private activations;
    /// @notice The newest version to have reached its quorum (it may not be active yet: see activatesAtBlock).
    bytes32 public latest;

    event Proposed(bytes32 indexed version, bytes32 indexed parent, address indexed proposer, string uri);
    event Approved(bytes32 indexed version, address indexed approver, uint256 approvals);
    event Scheduled(bytes32 indexed version, uint64 activatesAtBlock);

    constructor(
        address memberRegistry,
        bytes32 genesis,
        address[] memory approvers,
        uint16 quorum,
        address[] memory required,
        uint32 activationDelayBlocks,
        string memory uri
    ) {
        members = IMemberRegistry(memberRegistry);
        _store(genesis, bytes32(0), approvers, quorum, required, activationDelayBlocks, uri);
        _schedule(genesis, uint64(block.number));
    }

    /// @notice Put a rule book version up for approval. Conflict-free books only: nodes check that off-chain.
    function propose(
        bytes32 version,
        bytes32 parent,
        address[] calldata approvers,
        uint16 quorum,
        address[] calldata required,
        uint32 activationDelayBlocks,
        string calldata uri
    ) external {
        require(members.isMember(msg.sender), "not a member");
        require(parent == latest, "parent is not the latest version");
        _store(version, parent, approvers, quorum, required, activationDelayBlocks, uri);
    }

    /// @notice Approve a pending version; the approval that completes the quorum schedules its activation.
    function approve(bytes32 version) external {
        Version storage v = versions[version];
        require(v.proposer != address(0), "unknown version");
        require(v.activatesAtBlock == 0, "already scheduled");
        require(v.parent == latest, "stale: its parent is no longer the latest version");
        Governance storage g = versions[latest].governance;
        require(_contains(g.approvers, msg.sender), "not an approver of the current version");
        require(!_contains(v.approvals, msg.sender), "already approved");
        v.approvals.push(msg.sender);
        emit Approved(version, msg.sender, v.approvals.length);
        if (v.approvals.length >= g.quorum && _containsAll(v.approvals, g.required)) {
            _schedule(version, uint64(block.number) + g.activationDelayBlocks);
        }
    }

    /// @notice The version in force at a block: the last scheduled one whose activation block has come.
    function activeAt(uint64 blockNumber) public view returns (bytes32) {
        for (uint256 i = activations.length; i > 0; i--) {
            bytes32 h = activations[i - 1];
            if (versions[h].activatesAtBlock <= blockNumber) {
                return h;
            }
        }
        return bytes32(0);
    }

    function active() external view returns (bytes32) {
        return activeAt(uint64(block.number));
    }

    /// @notice The version in force and the block it was read at, in one call (nodes ask before each decision).
    function current() external view returns (bytes32 version, uint64 atBlock) {
        return (activeAt(uint64(block.number)), uint64(block.number));
    }

    function getVersion(bytes32 version)
        external
        view
        returns (
            bytes32 parent,
            address proposer,
            uint64 proposedAtBlock,
            uint64 activatesAtBlock,
            string memory uri,
            address[] memory approvals,
            Governance memory governance
        )
    {
        Version storage v = versions[version];
        require(v.proposer != address(0), "unknown version");
        return (v.parent, v.proposer, v.proposedAtBlock, v.activatesAtBlock, v.uri, v.approvals, v.governance);
    }

    function proposedVersions() external view returns (bytes32[] memory) {
        return proposed;
    }

    function activatedVersions() external view returns (bytes32[] memory) {
        return activations;
    }

    function _store(
        bytes32 version,
        bytes32 parent,
        address[] memory approvers,
        uint16 quorum,
        address[] memory required,
        uint32 activationDelayBlocks,
        string memory uri
    ) private {
        require(version != bytes32(0), "empty version");
        require(versions[version].proposer == address(0), "version already proposed");
        require(quorum > 0 && quorum <= approvers.length, "quorum out of range");
        for (uint256 i = 0; i < approvers.length; i++) {
            require(approvers[i] != address(0), "zero approver");
            for (uint256 j = 0; j < i; j++) {
                require(approvers[i] != approvers[j], "approver listed twice");
            }
        }
        require(_containsAll(approvers, required), "required approver is not an approver");
        Version storage v = versions[version];
        v.parent = parent;
        v.proposer = msg.sender;
        v.proposedAtBlock = uint64(block.number);
        v.uri = uri;
        v.governance.approvers = approvers;
        v.governance.quorum = quorum;
        v.governance.required = required;
        v.governance.activationDelayBlocks = activationDelayBlocks;
        proposed.push(version);
        emit Proposed(version, parent, msg.sender, uri);
    }

    function _schedule(bytes32 version, uint64 atBlock) private {
        // Activations never overtake each other: the version in force only ever moves forward.
        if (activations.length > 0) {
            uint64 previous = versions[activations[activations.length - 1]].activatesAtBlock;
            if (atBlock < previous) {
                atBlock = previous;
            }
        }
        versions[version].activatesAtBlock = atBlock;
        latest = version;
        activations.push(version);
        emit Scheduled(version, atBlock);
    }

    function _contains(address[] memory list, address a) private pure returns (bool) {
        for (uint256 i = 0; i < list.length; i++) {
            if (list[i] == a) {
                return true;
            }
        }
        return false;
    }

    function _containsAll(address[] memory list, address[] memory wanted) private pure returns (bool) {
        for (uint256 i = 0; i < wanted.length; i++) {
            if (!_contains(list, wanted[i])) {
                return false;
            }
        }
        return true;
    }
}
